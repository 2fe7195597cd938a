// Package packed is the layout of an online store's packed entity: one
// byte string per (class, entity) holding all of that entity's cached
// features, so that a store keeps one value (one key, one allocation) per
// entity rather than one per feature. A feature is not named in the
// entity: it sits in its slot, a number the class's Directory gives each
// (name, type) once, and values are grouped by observation time, so that
// a float costs 10 bytes and a time is stored once per group. Append
// builds an entity from a row of values, an Unpacker reads the asked
// features of entities into a stores.ValuesBuilder, and Merge combines a
// stored entity with a newer write, keeping per feature the value
// observed later.
//
// It knows nothing of where entities and directories are kept (a Redis
// string and hash, a Go map) nor of entity keys.
package packed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/stores"
)

// A packed entity:
//
//	layout     1 byte, 3 (an entity of another layout reads as missing)
//	directory  4 bytes: the id of the Directory its slots are numbers of
//	groups, one per distinct observation time, by their lowest slot:
//	  observed 8 bytes: stores.AppendObserved
//	  first    2 bytes, big-endian: the group's lowest slot
//	  span     2 bytes, big-endian: its bitmap covers slots first to
//	           first+span-1
//	  bitmap   (span+7)/8 bytes: bit k (of byte k/8, lowest bit first)
//	           set when slot first+k is in the group
//	  values, one per set bit, by slot:
//	    length 1 byte below 255; else 255 and 4 bytes, big-endian
//	    value  stores.AppendUntypedValue's encoding
//
// A slot is in one group at most. Redis keeps these bytes: the layout
// byte cannot change without making every stored entity read as missing.
const (
	Layout      byte = 3
	dirIDSize        = 4
	header           = 1 + dirIDSize
	groupHeader      = 8 + 2 + 2
	maxSlots         = 1 << 16
	longValue        = 255
)

// ErrCorrupt is the error of bytes that are not a packed entity.
var ErrCorrupt = errors.New("stored entity is not a packed entity (written by something else than fletch?)")

// Append appends to buf the packed entity of row row of values, whose
// fields' slots are f's (f is of values' schema), all observed at
// observed.
func Append(buf []byte, observed time.Time, f *Fields, values arrow.RecordBatch, row int) ([]byte, error) {
	if len(f.slots) != int(values.NumCols()) {
		return nil, fmt.Errorf("%d slots for %d features", len(f.slots), values.NumCols())
	}
	buf = append(buf, Layout)
	buf = append(buf, f.dir[:]...)
	if len(f.order) == 0 {
		return buf, nil
	}
	first := f.slots[f.order[0]]
	span := f.slots[f.order[len(f.order)-1]] - first + 1
	buf = stores.AppendObserved(buf, observed)
	buf = binary.BigEndian.AppendUint16(buf, uint16(first))
	buf = binary.BigEndian.AppendUint16(buf, uint16(span))
	bitmap := len(buf)
	buf = append(buf, make([]byte, (span+7)/8)...)
	for _, c := range f.order {
		k := f.slots[c] - first
		buf[bitmap+k/8] |= 1 << (k % 8)
		at := len(buf)
		buf = append(buf, 0)
		var err error
		if buf, err = stores.AppendUntypedValue(buf, values.Column(c), row); err != nil {
			return nil, fmt.Errorf("feature %s: %w", values.ColumnName(c), err)
		}
		if n := len(buf) - at - 1; n < longValue {
			buf[at] = byte(n)
		} else { // room for the 4-byte length, after the value for now
			buf = append(buf, 0, 0, 0, 0)
			copy(buf[at+5:], buf[at+1:len(buf)-4])
			buf[at] = longValue
			binary.BigEndian.PutUint32(buf[at+1:], uint32(n))
		}
	}
	return buf, nil
}

// cursor reads the values of a packed entity in stored order; what it
// answers aliases the entity. A loop over a cursor costs no call per value
// beyond next: an Unpack of 100 entities of 250 features reads 25,000 of
// them.
type cursor struct {
	b      []byte // what is not read yet
	at     []byte // the current group's 8 observed bytes
	bitmap []byte // the current group's, from the next bit on
	first  int    // the slot of the bitmap's first bit
	bit    int    // the next bit to look at, in the current group's bitmap
	span   int
}

// newCursor starts reading blob, an entity of directory dir. An entity
// that counts as empty (none, or of another layout) has no values; foreign
// is true for one of another directory, which reads as empty too.
func newCursor(blob string, dir dirID) (c cursor, foreign bool, err error) {
	if blob == "" || blob[0] != Layout {
		if blob != "" && blob[0] > Layout {
			return cursor{}, false, ErrCorrupt
		}
		return cursor{}, false, nil
	}
	if len(blob) < header {
		return cursor{}, false, ErrCorrupt
	}
	if blob[1:header] != string(dir[:]) {
		return cursor{}, true, nil
	}
	return cursor{b: unsafe.Slice(unsafe.StringData(blob), len(blob))[header:]}, false, nil
}

// next reads the next value: its slot and bytes (c.at is its group's
// time); ok is false after the last.
func (c *cursor) next() (slot int, value []byte, ok bool, err error) {
	for {
		for c.bit < c.span {
			k := c.bit
			c.bit++
			if c.bitmap[k/8]&(1<<(k%8)) == 0 {
				continue
			}
			value, c.b, err = cutValue(c.b)
			if err != nil {
				return 0, nil, false, err
			}
			return c.first + k, value, true, nil
		}
		if ok, err := c.nextGroup(); !ok {
			return 0, nil, false, err
		}
	}
}

// nextGroup starts reading the next group; ok is false after the last.
func (c *cursor) nextGroup() (ok bool, err error) {
	if len(c.b) == 0 {
		return false, nil
	}
	if len(c.b) < groupHeader {
		return false, ErrCorrupt
	}
	c.at = c.b[:8]
	c.first = int(binary.BigEndian.Uint16(c.b[8:]))
	c.span = int(binary.BigEndian.Uint16(c.b[10:]))
	size := (c.span + 7) / 8
	if c.first+c.span > maxSlots || len(c.b) < groupHeader+size {
		return false, ErrCorrupt
	}
	c.bitmap = c.b[groupHeader : groupHeader+size]
	c.b = c.b[groupHeader+size:]
	c.bit = 0
	return true, nil
}

// cutValue cuts the value that starts b (its length first) off b.
func cutValue(b []byte) (value, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, ErrCorrupt
	}
	n, skip := int(b[0]), 1
	if n == longValue {
		if len(b) < 5 {
			return nil, nil, ErrCorrupt
		}
		n, skip = int(binary.BigEndian.Uint32(b[1:])), 5
	}
	if len(b)-skip < n {
		return nil, nil, ErrCorrupt
	}
	return b[skip : skip+n], b[skip+n:], nil
}

// Unpacker puts the asked features of packed entities into a
// stores.ValuesBuilder. One Unpacker serves one Get; it is not safe for
// concurrent use.
type Unpacker struct {
	f *Fields
	// foreign counts the entities of another directory read: the
	// directory was made anew since this process loaded it.
	foreign int
}

// NewUnpacker returns an Unpacker of the features of f's schema.
func NewUnpacker(f *Fields) *Unpacker { return &Unpacker{f: f} }

// Foreign is the number of entities read that were written with another
// directory of the class than the Unpacker's (they read as missing): the
// store should load its directory again.
func (u *Unpacker) Foreign() int { return u.foreign }

// Unpack puts the asked values of blob, the entity of row row, into vb;
// an empty blob, or one of another layout or directory, puts nothing. The
// values it passes alias blob (no copy).
func (u *Unpacker) Unpack(vb *stores.ValuesBuilder, row int, blob string) error {
	c, foreign, err := newCursor(blob, u.f.dir)
	if foreign {
		u.foreign++
	}
	if err != nil {
		return err
	}
	column := u.f.column
	// An entity holds each feature once: once every asked feature is
	// found, the rest of it is not read (a plan asking 50 of 250 stored
	// features that come first reads 50 values, not 250). The values of a
	// group are walked here rather than through c.next: a Get of 10,000
	// entities reads 500,000 of them.
	for left := len(u.f.order); left > 0; {
		if ok, err := c.nextGroup(); !ok {
			return err
		}
		t, _ := stores.ObservedTimestamp(c.at)
		b := c.b
		for k := 0; k < c.span && left > 0; k++ {
			if c.bitmap[k/8]&(1<<(k%8)) == 0 {
				continue
			}
			value, rest, err := cutValue(b)
			if err != nil {
				return err
			}
			b = rest
			slot := c.first + k
			if slot >= len(column) || column[slot] < 0 {
				continue
			}
			left--
			if err := vb.PutUntyped(row, int(column[slot]), t, value); err != nil {
				return err
			}
		}
		c.b = b
	}
	return nil
}
