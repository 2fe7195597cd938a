package packed

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// Merge is the entity stored after given is written over stored: per
// feature the newer of the two values (given's at equal times), the
// features only stored keeps as they are, and the result grouped by
// observation time again. An entity that is empty or of an older layout
// counts as empty (its values read as missing anyway).
//
// It is the Redis store's merge script in Go, to the byte: entries of
// stored's features first, in stored's order, then given's other features
// in given's order; groups in the order of their first entry. Unlike the
// script, it refuses bytes that are not a packed entity (ErrCorrupt) rather
// than overwrite them.
func Merge(stored, given string) (string, error) {
	if stored == "" {
		if err := readAll(given); err != nil {
			return "", err
		}
		return given, nil
	}
	m := merges.Get().(*merge)
	defer m.release()
	return m.merge(stored, given)
}

// release returns m to merges without the strings of this merge, which
// its slices would keep alive.
func (m *merge) release() {
	clear(m.old)
	clear(m.new)
	clear(m.out)
	clear(m.groups[:cap(m.groups)])
	clear(m.index)
	clear(m.byTime)
	merges.Put(m)
}

// merge holds a Merge's scratch slices, reused through merges.
type merge struct {
	old, new []entry
	taken    []bool         // of new: its feature is stored too
	index    map[string]int // given's names
	out      []entry
	group    []int // of out: its group
	groups   []group
	byTime   map[string]int // group of a time, once there are many
}

type group struct {
	at          string
	count, size int // its entries and their bytes
	off         int // of its header in the result
	written     int // where its next entry goes, once one is
}

var merges = sync.Pool{New: func() any { return &merge{} }}

func (m *merge) merge(stored, given string) (string, error) {
	var err error
	if m.old, _, err = appendEntries(m.old[:0], stored); err != nil {
		return "", fmt.Errorf("stored: %w", err)
	}
	var givenGroups int
	if m.new, givenGroups, err = appendEntries(m.new[:0], given); err != nil {
		return "", fmt.Errorf("given: %w", err)
	}
	m.taken = slices.Grow(m.taken[:0], len(m.new))[:len(m.new)]
	clear(m.taken)
	clear(m.index)
	m.out = m.out[:0]
	// Entities mostly store their features in the order they are written
	// in: a given entry is found at its stored position, and a map of
	// given's names is built only where one is not.
	indexed := false
	allGiven := true
	for j, o := range m.old {
		k := -1
		if j < len(m.new) && m.new[j].name == o.name {
			k = j
		} else {
			if !indexed {
				m.indexNew()
				indexed = true
			}
			if i, ok := m.index[o.name]; ok {
				k = i
			}
		}
		if k >= 0 {
			m.taken[k] = true
		}
		if k < 0 || m.new[k].at < o.at {
			m.out = append(m.out, o)
			allGiven = false
		} else {
			m.out = append(m.out, m.new[k])
		}
	}
	inOrder := allGiven && len(m.old) == len(m.new) && !indexed
	for k, n := range m.new {
		if !m.taken[k] {
			m.out = append(m.out, n)
		}
	}
	return m.write(given, givenGroups, inOrder)
}

// appendEntries appends the entries of blob to es; groups is the number
// of groups blob holds entries in.
func appendEntries(es []entry, blob string) (_ []entry, groups int, err error) {
	c, err := newCursor(blob)
	if err != nil {
		return es, 0, err
	}
	var last *byte // the group of the last entry
	for {
		name, value, ok, err := c.next()
		if !ok {
			return es, groups, err
		}
		if p := unsafe.SliceData(c.at); p != last {
			last = p
			groups++
		}
		es = append(es, entry{name, unsafe.String(unsafe.SliceData(value), len(value)), unsafe.String(last, 8)})
	}
}

// readAll reads every entry of blob, for its error.
func readAll(blob string) error {
	c, err := newCursor(blob)
	for ok := err == nil; ok; {
		_, _, ok, err = c.next()
	}
	return err
}

// indexNew maps given's names to their entries; the last one of a name
// that repeats, as the script's table does.
func (m *merge) indexNew() {
	if m.index == nil {
		m.index = make(map[string]int, len(m.new))
	}
	for k, n := range m.new {
		m.index[n.name] = k
	}
}

// write packs out, grouped by time. When out is given's entries in given's
// order (inOrder) and given's groups have distinct times, that is given
// itself.
func (m *merge) write(given string, givenGroups int, inOrder bool) (string, error) {
	m.groups = m.groups[:0]
	m.group = m.group[:0]
	clear(m.byTime)
	g := -1
	size := 1
	for _, e := range m.out {
		if g < 0 || m.groups[g].at != e.at {
			g = m.groupOf(e.at)
		}
		m.groups[g].count++
		m.groups[g].size += entrySize(e)
		m.group = append(m.group, g)
	}
	if inOrder && len(m.out) > 0 && len(m.groups) == givenGroups {
		return given, nil
	}
	for g := range m.groups {
		gr := &m.groups[g]
		if gr.count > maxCount {
			return "", fmt.Errorf("%d features observed at one time in one entity; at most %d", gr.count, maxCount)
		}
		gr.off = size
		size += groupHeader + gr.size
	}
	buf := make([]byte, size)
	buf[0] = Layout
	for _, gr := range m.groups {
		copy(buf[gr.off:], gr.at)
		binary.BigEndian.PutUint16(buf[gr.off+8:], uint16(gr.count))
	}
	for i, e := range m.out {
		gr := &m.groups[m.group[i]]
		if gr.written == 0 {
			gr.written = gr.off + groupHeader
		}
		off := gr.written
		binary.BigEndian.PutUint16(buf[off:], uint16(len(e.name)))
		off += 2 + copy(buf[off+2:], e.name)
		binary.BigEndian.PutUint32(buf[off:], uint32(len(e.value)))
		off += 4 + copy(buf[off+4:], e.value)
		gr.written = off
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil // buf is not written again
}

func entrySize(e entry) int { return 2 + len(e.name) + 4 + len(e.value) }

// groupOf is the group of the entries observed at at, a new one after the
// others if none is yet. An entity has a handful of groups, looked up by
// a scan; a map takes over beyond that.
func (m *merge) groupOf(at string) int {
	const scan = 8
	if len(m.groups) <= scan {
		for g := range m.groups {
			if m.groups[g].at == at {
				return g
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
			return g
		}
		m.byTime[at] = len(m.groups)
	}
	m.groups = append(m.groups, group{at: at})
	return len(m.groups) - 1
}
