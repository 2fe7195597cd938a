package packed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/stores"
)

// A Directory numbers a class's features: each (name, type) gets a slot
// the first time it is written, and keeps it. Entities store values by
// slot, so the names and types are stored once per class instead of once
// per value (a float costs 10 bytes instead of 20), and a type change
// gives the feature a new slot: a value cached under another type reads as
// missing, never misread.
//
// Slots are assigned by its Source, so that every process writing a class
// numbers its features alike. A directory that is lost (a Redis key
// evicted or deleted) and made again gets a new id: entities written with
// the old one read as missing rather than with another meaning of their
// slots.
//
// It is safe for concurrent use.
type Directory struct {
	src Source
	mu  sync.Mutex
	id  dirID
	// slots of the features known: "name:type" → slot
	slots  map[string]int
	loaded time.Time // when src was last read; zero: never
	stale  bool      // an entity of another directory was read
	// fields caches Fields per asked schema (a plan asks with the same
	// schema every time) once every field of it has a slot.
	fields map[*arrow.Schema]*Fields
}

type dirID [dirIDSize]byte

// Source keeps a Directory where every process writing the class sees it.
type Source interface {
	// Assign returns the directory's id and the slot of each feature
	// (NewID is the id of a directory made now), giving the next free
	// slots to the features without one, at once for every process.
	Assign(ctx context.Context, newID string, features []string) (id string, slots []int, err error)
	// Load returns the directory's id and every feature's slot; id is ""
	// for a directory never made.
	Load(ctx context.Context) (id string, slots map[string]int, err error)
}

// NewDirectory returns the directory src keeps; a nil src keeps it in this
// process only (the memory store's).
func NewDirectory(src Source) *Directory {
	d := &Directory{src: src, slots: map[string]int{}}
	if src == nil {
		d.id = newID()
	}
	return d
}

func newID() dirID {
	var id dirID
	_, _ = rand.Read(id[:]) // never fails
	return id
}

// NewID returns the id of a directory made now, as a Source keeps it.
func NewID() string { id := newID(); return hex.EncodeToString(id[:]) }

func parseID(s string) (dirID, error) {
	var id dirID
	if b, err := hex.DecodeString(s); err != nil || len(b) != dirIDSize {
		return id, fmt.Errorf("directory id %q is not %d hex bytes", s, dirIDSize)
	} else {
		copy(id[:], b)
	}
	return id, nil
}

// Fields is where the fields of a schema sit in the entities of a
// directory.
type Fields struct {
	dir    dirID
	slots  []int   // per field; -1: none yet (never written)
	order  []int   // the fields with a slot, by slot
	column []int32 // per slot up to the highest asked: its field, or -1
}

// reloadEvery bounds how often a Get that asks features without a slot
// (never written, or written by another process since) reads the
// directory again.
const reloadEvery = time.Second

// Fields returns the slots of schema's fields. With assign, fields without
// one get one (a write); without, they have none (a read: nothing is
// stored for them).
func (d *Directory) Fields(ctx context.Context, schema *arrow.Schema, assign bool) (*Fields, error) {
	d.mu.Lock()
	f, ok := d.fields[schema]
	d.mu.Unlock()
	if ok {
		return f, nil
	}
	names := make([]string, schema.NumFields())
	for i := range names {
		fd := schema.Field(i)
		if err := stores.CacheableType(fd.Type); err != nil {
			return nil, fmt.Errorf("feature %s: %w", fd.Name, err)
		}
		names[i] = fd.Name + ":" + fd.Type.String()
	}
	f, missing, stale := d.lookup(names)
	if (missing > 0 || stale) && d.src != nil && (assign || d.dueReload()) {
		if err := d.fetch(ctx, names, assign); err != nil {
			return nil, err
		}
		f, missing, stale = d.lookup(names)
	}
	if missing > 0 && assign && d.src == nil {
		d.mu.Lock()
		for _, n := range names {
			if _, ok := d.slots[n]; !ok && len(d.slots) < maxSlots {
				d.slots[n] = len(d.slots)
			}
		}
		d.mu.Unlock()
		f, missing, stale = d.lookup(names)
	}
	if missing > 0 && assign {
		return nil, fmt.Errorf("%d features of the class have no slot: a class has at most %d (name, type) pairs", missing, maxSlots)
	}
	if err := f.index(schema); err != nil {
		return nil, err
	}
	if missing == 0 && !stale {
		d.mu.Lock()
		if d.fields == nil || len(d.fields) >= maxSchemas {
			// schemas made per request (ad-hoc queries) must not grow
			// it forever: past the bound it starts over
			d.fields = map[*arrow.Schema]*Fields{}
		}
		d.fields[schema] = f
		d.mu.Unlock()
	}
	return f, nil
}

const maxSchemas = 1024

// lookup answers the slots known of names, how many have none, and
// whether the directory is to be loaded again.
func (d *Directory) lookup(names []string) (f *Fields, missing int, stale bool) {
	f = &Fields{slots: make([]int, len(names))}
	d.mu.Lock()
	defer d.mu.Unlock()
	f.dir = d.id
	for i, n := range names {
		s, ok := d.slots[n]
		if !ok {
			s = -1
			missing++
		}
		f.slots[i] = s
	}
	return f, missing, d.stale
}

// dueReload tells whether a read may load the directory again now.
func (d *Directory) dueReload() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loaded.IsZero() || time.Since(d.loaded) >= reloadEvery
}

// fetch reads the directory from its source, assigning names their slots
// when assign.
func (d *Directory) fetch(ctx context.Context, names []string, assign bool) error {
	var (
		id    string
		slots map[string]int
		err   error
	)
	if assign {
		var got []int
		id, got, err = d.src.Assign(ctx, NewID(), names)
		if err == nil {
			slots = make(map[string]int, len(names))
			for i, n := range names {
				slots[n] = got[i]
			}
		}
	} else {
		id, slots, err = d.src.Load(ctx)
	}
	if err != nil {
		return fmt.Errorf("slot directory: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loaded, d.stale = time.Now(), false
	if id == "" {
		return nil // never made: nothing is stored
	}
	parsed, err := parseID(id)
	if err != nil {
		return fmt.Errorf("slot directory: %w", err)
	}
	if parsed != d.id || !assign {
		// Made anew, or read whole: what was known before may be another
		// directory's.
		d.id, d.slots, d.fields = parsed, map[string]int{}, nil
	}
	for n, s := range slots {
		if s < 0 || s >= maxSlots {
			return fmt.Errorf("slot directory: feature %s has slot %d, outside 0..%d", n, s, maxSlots-1)
		}
		d.slots[n] = s
	}
	return nil
}

// Stale notes that an entity of another directory was read (Unpacker's
// Foreign): a read loads the directory again, at most once a second.
func (d *Directory) Stale() {
	d.mu.Lock()
	d.stale, d.fields = true, nil
	d.mu.Unlock()
}

// index fills f's order and column from its slots.
func (f *Fields) index(schema *arrow.Schema) error {
	high := -1
	for i, s := range f.slots {
		if s >= 0 {
			f.order = append(f.order, i)
			high = max(high, s)
		}
	}
	slices.SortFunc(f.order, func(a, b int) int { return f.slots[a] - f.slots[b] })
	f.column = make([]int32, high+1)
	for i := range f.column {
		f.column[i] = -1
	}
	for _, i := range f.order {
		if f.column[f.slots[i]] >= 0 {
			return fmt.Errorf("feature %s asked twice", schema.Field(i).Name)
		}
		f.column[f.slots[i]] = int32(i)
	}
	return nil
}
