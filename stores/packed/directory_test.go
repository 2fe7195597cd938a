package packed

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

// sharedSource is a Source in this process that several Directories
// share, as processes share a Redis hash (the Redis store's own is tested
// against a real server in stores/redis).
type sharedSource struct {
	mu    sync.Mutex
	id    string
	slots map[string]int
}

func (s *sharedSource) Assign(_ context.Context, newID string, features []string) (string, []int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == "" {
		s.id, s.slots = newID, map[string]int{}
	}
	out := make([]int, len(features))
	for i, f := range features {
		slot, ok := s.slots[f]
		if !ok {
			slot = len(s.slots)
			s.slots[f] = slot
		}
		out[i] = slot
	}
	return s.id, out, nil
}

func (s *sharedSource) Load(context.Context) (string, map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, maps.Clone(s.slots), nil
}

// lose forgets the directory, as an evicted Redis key does.
func (s *sharedSource) lose() {
	s.mu.Lock()
	s.id, s.slots = "", nil
	s.mu.Unlock()
}

// Two processes (directories over one source) write subsets of a class's
// features in different orders and read each other's entities; a feature
// whose type changed reads as missing; a directory made anew makes the
// entities before it read as missing, never misread.
func TestDirectoryShared(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	src := &sharedSource{}
	a, b := NewDirectory(src), NewDirectory(src)
	write := func(d *Directory, stored string, wr write) string {
		t.Helper()
		rec := record(mem, wr.order, wr.values)
		defer rec.Release()
		f, err := d.Fields(ctx, rec.Schema(), true)
		if err != nil {
			t.Fatal(err)
		}
		given, err := Append(nil, wr.at, f, rec, 0)
		if err != nil {
			t.Fatal(err)
		}
		merged, err := Merge(stored, string(given))
		if err != nil {
			t.Fatal(err)
		}
		return merged
	}
	// read answers the values of names in entity as d sees them, and the
	// foreign entities read.
	read := func(d *Directory, entity string, names ...string) (map[string]any, int) {
		t.Helper()
		fs := make([]arrow.Field, len(names))
		for i, n := range names {
			fs[i] = fieldOf(n)
		}
		return readFields(t, mem, d, entity, fs...)
	}
	readFields(t, mem, a, "", fieldOf("n1")) // a has read its directory: none yet

	e := write(a, "", w(0, "n1", int64(1), "x1", 1.5))
	e = write(b, e, w(time.Minute, "s1", "b's", "n1", int64(2)))
	e = write(a, e, w(2*time.Minute, "b1", true))
	want := map[string]any{"n1": int64(2), "x1": 1.5, "s1": "b's", "b1": true}
	for _, d := range []*Directory{a, b} {
		d.mu.Lock()
		d.loaded = time.Time{} // a read may load the directory now
		d.mu.Unlock()
		if got, _ := read(d, e, "b1", "s1", "x1", "n1"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("read %v, want %v", got, want)
		}
	}
	// Asked as a float now: another slot, nothing stored in it.
	asFloat := arrow.Field{Name: "n1", Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	if got, _ := readFields(t, mem, a, e, asFloat); got["n1"] != nil {
		t.Errorf("a feature whose type changed reads %v, want missing", got["n1"])
	}

	src.lose()
	c := NewDirectory(src)
	fresh := write(c, "", w(3*time.Minute, "b1", false)) // slot 0 is b1 now, not n1
	if got, foreign := read(a, fresh, "n1", "b1"); got["n1"] != nil || got["b1"] != nil || foreign != 1 {
		t.Errorf("an entity of a newer directory reads %v (%d foreign), want nothing (1 foreign)", got, foreign)
	}
	if merged := write(c, e, w(3*time.Minute, "b1", false)); merged != fresh {
		t.Errorf("a write over an entity of a lost directory is % x, want % x (the write alone)", merged, fresh)
	}
	a.Stale()
	a.mu.Lock()
	a.loaded = time.Time{}
	a.mu.Unlock()
	if got, _ := read(a, fresh, "n1", "b1"); got["b1"] != false || got["n1"] != nil {
		t.Errorf("after loading the new directory, read %v; want b1 false, n1 missing", got)
	}
}

// Fields of one schema asked concurrently, with writes assigning slots
// meanwhile, agree (go test -race).
func TestDirectoryConcurrent(t *testing.T) {
	ctx := context.Background()
	d := NewDirectory(&sharedSource{})
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				names := make([]string, 1+rng.IntN(5))
				for i := range names {
					names[i] = fmt.Sprintf("x%d", rng.IntN(40))
				}
				fs := make([]arrow.Field, 0, len(names))
				dup := map[string]bool{}
				for _, n := range names {
					if !dup[n] {
						dup[n] = true
						fs = append(fs, fieldOf(n))
					}
				}
				schema := arrow.NewSchema(fs, nil)
				f, err := d.Fields(ctx, schema, rng.IntN(2) == 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, s := range f.slots {
					n := schema.Field(i).Name
					if old, ok := seen[n]; ok && s >= 0 && old != s {
						t.Errorf("%s has slot %d and %d", n, old, s)
					}
					if s >= 0 {
						seen[n] = s
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// readFields reads the features fs of entity as d numbers them: their
// values (nil where null or missing), and how many entities were foreign.
func readFields(t *testing.T, mem memory.Allocator, d *Directory, entity string, fs ...arrow.Field) (map[string]any, int) {
	t.Helper()
	schema := arrow.NewSchema(fs, nil)
	f, err := d.Fields(context.Background(), schema, false)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := stores.NewValuesBuilder(mem, schema, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Release()
	u := NewUnpacker(f)
	if err := u.Unpack(vb, 0, entity); err != nil {
		t.Fatal(err)
	}
	got := vb.Finish()
	defer got.Release()
	out := map[string]any{}
	for i, fd := range fs {
		col := got.Values.Column(i)
		if col.IsNull(0) {
			out[fd.Name] = nil
			continue
		}
		out[fd.Name] = col.GetOneForMarshal(0)
	}
	return out, u.Foreign()
}
