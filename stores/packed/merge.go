package packed

import (
	"encoding/binary"
	"sync"
	"unsafe"
)

// Merge is the entity stored after given is written over stored: per slot
// the newer of the two values (given's at equal times), the slots only
// stored keeps as they are, grouped by observation time again. A stored
// entity that is empty, of an older layout or of another directory than
// given's counts as empty (its values read as missing anyway).
//
// It is the Redis store's merge script in Go, to the byte: groups by their
// lowest slot, each group's values by slot. Unlike the script, it refuses
// bytes that are not a packed entity (ErrCorrupt) rather than overwrite
// them.
func Merge(stored, given string) (string, error) {
	if given == "" {
		return stored, readAll(stored)
	}
	if given[0] != Layout {
		return "", ErrCorrupt
	}
	if err := readAll(given); err != nil {
		return "", err
	}
	dir := dirID([]byte(given[1:header]))
	c, _, err := newCursor(stored, dir)
	if err != nil {
		return "", err
	}
	if c.b == nil {
		return given, nil
	}
	m := merges.Get().(*merge)
	defer m.release()
	if err := m.read(c); err != nil {
		return "", err
	}
	c, _, _ = newCursor(given, dir)
	if err := m.read(c); err != nil {
		return "", err
	}
	return m.write(given[:header]), nil
}

// readAll reads every value of blob, for its error.
func readAll(blob string) error {
	if blob != "" && blob[0] == Layout && len(blob) >= header {
		c, _, err := newCursor(blob, dirID([]byte(blob[1:header])))
		for ok := err == nil; ok; {
			_, _, ok, err = c.next()
		}
		return err
	}
	_, _, err := newCursor(blob, dirID{})
	return err
}

// merge holds a Merge's scratch slices, reused through merges.
type merge struct {
	// per slot: its value and the 8 observed bytes of its group, "" for
	// none; they alias the entities merged
	value, at []string
	groups    []group
	byTime    map[string]int // group of a time, once there are many
}

type group struct {
	at          string
	first, last int // slots
	size        int // its values' bytes, with their lengths
	bitmap, off int // in the result: its bitmap, its next value
}

var merges = sync.Pool{New: func() any { return &merge{} }}

// release returns m to merges without the strings of this merge, which
// its slices would keep alive.
func (m *merge) release() {
	clear(m.value)
	clear(m.at)
	m.value, m.at = m.value[:0], m.at[:0]
	clear(m.groups[:cap(m.groups)])
	clear(m.byTime)
	merges.Put(m)
}

// read puts the values c reads over those read before, where they are as
// new or newer.
func (m *merge) read(c cursor) error {
	for {
		slot, value, ok, err := c.next()
		if !ok {
			return err
		}
		for len(m.value) <= slot {
			m.value, m.at = append(m.value, ""), append(m.at, "")
		}
		at := unsafe.String(unsafe.SliceData(c.at), 8)
		if m.at[slot] == "" || m.at[slot] <= at {
			m.value[slot], m.at[slot] = unsafe.String(unsafe.SliceData(value), len(value)), at
		}
	}
}

// write packs the slots read, grouped by time, after head (the layout and
// directory bytes).
func (m *merge) write(head string) string {
	m.groups = m.groups[:0]
	clear(m.byTime)
	for slot, at := range m.at {
		if at == "" {
			continue
		}
		g := m.groupOf(at, slot)
		g.last = slot
		g.size += lengthSize(len(m.value[slot])) + len(m.value[slot])
	}
	size := len(head)
	for i := range m.groups {
		g := &m.groups[i]
		size += groupHeader + (g.last-g.first+1+7)/8 + g.size
	}
	buf := make([]byte, size)
	off := copy(buf, head)
	for i := range m.groups {
		g := &m.groups[i]
		off += copy(buf[off:], g.at)
		binary.BigEndian.PutUint16(buf[off:], uint16(g.first))
		binary.BigEndian.PutUint16(buf[off+2:], uint16(g.last-g.first+1))
		g.bitmap = off + 4
		g.off = g.bitmap + (g.last-g.first+1+7)/8
		off = g.off + g.size
	}
	var g *group
	for slot, at := range m.at {
		if at == "" {
			continue
		}
		if g == nil || g.at != at {
			g = m.groupOf(at, slot)
		}
		k := slot - g.first
		buf[g.bitmap+k/8] |= 1 << (k % 8)
		v := m.value[slot]
		if len(v) < longValue {
			buf[g.off] = byte(len(v))
			g.off++
		} else {
			buf[g.off] = longValue
			binary.BigEndian.PutUint32(buf[g.off+1:], uint32(len(v)))
			g.off += 5
		}
		g.off += copy(buf[g.off:], v)
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
}

func lengthSize(n int) int {
	if n < longValue {
		return 1
	}
	return 5
}

// groupOf is the group of the values observed at at, a new one starting
// at slot if none is yet. An entity has a handful of groups, looked up by
// a scan; a map takes over beyond that.
func (m *merge) groupOf(at string, slot int) *group {
	const scan = 8
	if len(m.groups) <= scan {
		for g := range m.groups {
			if m.groups[g].at == at {
				return &m.groups[g]
			}
		}
	} else {
		if len(m.byTime) == 0 {
			if m.byTime == nil {
				m.byTime = make(map[string]int)
			}
			for g := range m.groups {
				m.byTime[m.groups[g].at] = g
			}
		}
		if g, ok := m.byTime[at]; ok {
			return &m.groups[g]
		}
		m.byTime[at] = len(m.groups)
	}
	m.groups = append(m.groups, group{at: at, first: slot})
	return &m.groups[len(m.groups)-1]
}
