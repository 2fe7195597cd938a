// Package packed is the layout of an online store's packed entity: one
// byte string per (class, entity) holding all of that entity's cached
// features, grouped by observation time, so that a store keeps one value
// (one key, one allocation) per entity rather than one per feature, and a
// time is stored and read once per entity. Append builds an entity from a
// row of values, an Unpacker reads the asked features of entities into a
// stores.ValuesBuilder, and Merge combines a stored entity with a newer
// write, keeping per feature the value observed later.
//
// It knows nothing of where entities are kept (a Redis string, a Go map) nor
// of their keys.
package packed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/stores"
)

// A packed entity holds the entity's cached features grouped by their
// observation time:
//
//	layout       1 byte, 2 (an entity of an older layout reads as missing)
//	groups, one per distinct observation time:
//	  observed   8 bytes: stores.AppendObserved
//	  count      2 bytes, big-endian: the group's entries
//	  entries:
//	    name length  2 bytes, big-endian
//	    name
//	    value length 4 bytes, big-endian
//	    value        stores.AppendTypedValue's encoding
//
// Redis keeps these bytes: the layout byte cannot change without making
// every stored entity read as missing.
const (
	Layout byte = 2
	// layoutV1 starts the entities fletch wrote before: a 2-byte name
	// length first, whose high byte is 0 for any real feature name.
	layoutV1    byte = 0
	groupHeader      = 8 + 2
	maxCount         = 0xffff
)

// ErrCorrupt is the error of bytes that are not a packed entity.
var ErrCorrupt = errors.New("stored entity is not a packed entity (written by something else than fletch?)")

// Append appends to buf the packed entity of row row of values (one column
// per feature, named by feature name), all observed at observed.
func Append(buf []byte, observed time.Time, values arrow.RecordBatch, row int) ([]byte, error) {
	if values.NumCols() > maxCount {
		return nil, fmt.Errorf("%d features in one entity; at most %d", values.NumCols(), maxCount)
	}
	buf = append(buf, Layout)
	buf = stores.AppendObserved(buf, observed)
	buf = binary.BigEndian.AppendUint16(buf, uint16(values.NumCols()))
	for c, col := range values.Columns() {
		var err error
		if buf, err = appendEntry(buf, values.ColumnName(c), col, row); err != nil {
			return nil, fmt.Errorf("feature %s: %w", values.ColumnName(c), err)
		}
	}
	return buf, nil
}

func appendEntry(buf []byte, name string, col arrow.Array, row int) ([]byte, error) {
	if len(name) > 0xffff {
		return nil, fmt.Errorf("name longer than %d bytes", 0xffff)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(name)))
	buf = append(buf, name...)
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf, err := stores.AppendTypedValue(buf, col, row)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf, nil
}

// entry is one feature of a packed entity; its strings alias the
// entity's bytes.
type entry struct {
	name, value string
	// at is the group's 8 observed bytes, which order as the times do
	// (stores.AppendObserved).
	at string
}

// cursor reads the entries of a packed entity in stored order; what it
// answers aliases the entity. A loop over a cursor costs no call per entry
// beyond next: an Unpack of 100 entities of 250 features reads 25,000
// entries, and a callback per entry was a fifth of a 100-entity query's
// CPU on the server.
type cursor struct {
	blob  string
	b     []byte // the entries not read yet
	at    []byte // the current group's 8 observed bytes
	count int    // entries left in the current group
}

// newCursor starts reading blob. An entity that counts as empty (none, or
// of an older layout) has no entries.
func newCursor(blob string) (cursor, error) {
	if blob == "" || blob[0] == layoutV1 {
		return cursor{}, nil
	}
	if blob[0] != Layout {
		return cursor{}, ErrCorrupt
	}
	return cursor{blob: blob, b: unsafe.Slice(unsafe.StringData(blob), len(blob))[1:]}, nil
}

// next reads the next entry: its name and value (c.at is its group's
// time); ok is false after the last.
func (c *cursor) next() (name string, value []byte, ok bool, err error) {
	for c.count == 0 {
		if len(c.b) == 0 {
			return "", nil, false, nil
		}
		if len(c.b) < groupHeader {
			return "", nil, false, ErrCorrupt
		}
		c.at = c.b[:8]
		c.count = int(binary.BigEndian.Uint16(c.b[8:]))
		c.b = c.b[groupHeader:]
	}
	c.count--
	b := c.b
	if len(b) < 2 {
		return "", nil, false, ErrCorrupt
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+4 {
		return "", nil, false, ErrCorrupt
	}
	name = c.blob[len(c.blob)-len(b)+2:][:n]
	b = b[2+n:]
	vlen := int(binary.BigEndian.Uint32(b))
	if len(b) < 4+vlen {
		return "", nil, false, ErrCorrupt
	}
	c.b = b[4+vlen:]
	return name, b[4 : 4+vlen], true, nil
}

// Unpacker puts the asked features of packed entities into a
// stores.ValuesBuilder. Entities of a class mostly store their features
// in the same order: the feature at each entry position is remembered from
// the last entity (at first, the asked order, which is the stored one when
// the features were written together, or what Positions learned), and a
// map of the asked names is built and asked only where an entry differs.
// One Unpacker serves one Get; it is not safe for concurrent use.
type Unpacker struct {
	want  *arrow.Schema
	index map[string]int // asked feature name → column
	hints []hint
	// shared: hints are Positions', read-only until an entry differs.
	shared bool
}

type hint struct {
	name string // aliases an earlier entity's bytes, or want's
	i    int    // -1: not asked
}

// NewUnpacker returns an Unpacker of the features of want.
func NewUnpacker(want *arrow.Schema) *Unpacker {
	u := &Unpacker{want: want, hints: make([]hint, want.NumFields())}
	for i := range u.hints {
		u.hints[i] = hint{want.Field(i).Name, i}
	}
	return u
}

// Positions remembers, per asked schema (a plan asks with the same schema
// every time), the entry positions the Unpackers of a store learned, so
// that the next Get of that schema starts from them: an entity storing 250
// features of which 50 are asked is then read with no map and no
// allocation. It is safe for concurrent use; its zero value is ready.
type Positions struct {
	mu sync.Mutex
	m  map[*arrow.Schema][]hint
}

// maxSchemas bounds Positions: schemas made per request (ad-hoc queries)
// must not grow it forever; past the bound it starts over.
const maxSchemas = 1024

// Unpacker returns an Unpacker of want starting from what Unpackers of
// want learned before.
func (p *Positions) Unpacker(want *arrow.Schema) *Unpacker {
	p.mu.Lock()
	hints, ok := p.m[want]
	p.mu.Unlock()
	if !ok {
		return NewUnpacker(want)
	}
	return &Unpacker{want: want, hints: hints, shared: true}
}

// Learn keeps what u learned for the next Unpackers of its schema, when it
// learned anything.
func (p *Positions) Learn(u *Unpacker) {
	if u.shared {
		return // every entry was where the shared positions said
	}
	hints := make([]hint, len(u.hints))
	for i, h := range u.hints {
		// Names alias the entities read: kept, they would keep those
		// alive.
		hints[i] = hint{strings.Clone(h.name), h.i}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxSchemas {
		p.m = map[*arrow.Schema][]hint{}
	}
	p.m[u.want] = hints
}

// Unpack puts the asked entries of blob, the entity of row row, into vb;
// an empty blob or one of an older layout puts nothing. The values it
// passes alias blob (no copy), and the Unpacker keeps names aliasing it
// until its next entity: blob must not change meanwhile, as a string does
// not.
func (u *Unpacker) Unpack(vb *stores.ValuesBuilder, row int, blob string) error {
	c, err := newCursor(blob)
	if err != nil {
		return err
	}
	// An entity holds each feature once: once every asked feature is
	// found, the rest of it is not read (a plan asking 50 of 250 stored
	// features that come first reads 50 entries, not 250).
	left := u.want.NumFields()
	for j := 0; left > 0; j++ {
		name, value, ok, err := c.next()
		if !ok {
			return err
		}
		i := -1
		if j < len(u.hints) && u.hints[j].name == name {
			i = u.hints[j].i
		} else {
			i = u.feature(j, name)
		}
		if i < 0 {
			continue
		}
		left--
		t, _ := stores.ObservedTimestamp(c.at)
		if err := vb.Put(row, i, t, value); err != nil {
			return err
		}
	}
	return nil
}

// feature is the column of the entry named name at position j, -1 if not
// asked, where the hint at j is not name's: it is learned there.
func (u *Unpacker) feature(j int, name string) int {
	if u.index == nil {
		u.index = make(map[string]int, u.want.NumFields())
		for i := range u.want.NumFields() {
			u.index[u.want.Field(i).Name] = i
		}
	}
	i, ok := u.index[name]
	if !ok {
		i = -1
	}
	if u.shared { // copy on first write
		u.hints, u.shared = slices.Clone(u.hints), false
	}
	if j == len(u.hints) {
		u.hints = append(u.hints, hint{})
	}
	u.hints[j] = hint{name, i}
	return i
}
