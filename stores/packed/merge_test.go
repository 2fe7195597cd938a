package packed

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// testDir is the directory the tests' entities are written with.
var testDir = NewDirectory(nil)

// fields is schema's Fields in testDir; assign as a write does.
func fields(t testing.TB, schema *arrow.Schema, assign bool) *Fields {
	t.Helper()
	f, err := testDir.Fields(context.Background(), schema, assign)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A feature's type follows its name's first letter: n int64, x float64,
// s utf8, b bool, l list<int64>.
func fieldOf(name string) arrow.Field {
	types := map[byte]arrow.DataType{
		'n': arrow.PrimitiveTypes.Int64,
		'x': arrow.PrimitiveTypes.Float64,
		's': arrow.BinaryTypes.String,
		'b': arrow.FixedWidthTypes.Boolean,
		'l': arrow.ListOf(arrow.PrimitiveTypes.Int64),
	}
	return arrow.Field{Name: name, Type: types[name[0]], Nullable: true}
}

// write is one Set of one entity: features' values (nil is null), all
// observed at at.
type write struct {
	at     time.Time
	values map[string]any
	order  []string // of values' names, as written
}

func w(at time.Duration, kv ...any) write {
	wr := write{at: t0.Add(at), values: map[string]any{}}
	for i := 0; i < len(kv); i += 2 {
		wr.values[kv[i].(string)] = kv[i+1]
		wr.order = append(wr.order, kv[i].(string))
	}
	return wr
}

// record is one row of values, the given names in order, built with
// Arrow's builders from Go values.
func record(mem memory.Allocator, names []string, values map[string]any) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = fieldOf(n)
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, n := range names {
		v, ok := values[n]
		if !ok || v == nil {
			b.Field(i).AppendNull()
			continue
		}
		switch fb := b.Field(i).(type) {
		case *array.Int64Builder:
			fb.Append(v.(int64))
		case *array.Float64Builder:
			fb.Append(v.(float64))
		case *array.StringBuilder:
			fb.Append(v.(string))
		case *array.BooleanBuilder:
			fb.Append(v.(bool))
		case *array.ListBuilder:
			fb.Append(true)
			fb.ValueBuilder().(*array.Int64Builder).AppendValues(v.([]int64), nil)
		}
	}
	return b.NewRecordBatch()
}

// cell is what the reference model keeps of a feature.
type cell struct {
	v  any
	at time.Time
}

// model is the entity the writes leave, by the rule alone: per feature the
// value observed latest, the later write's at equal times.
func model(writes []write) map[string]cell {
	m := map[string]cell{}
	for _, wr := range writes {
		for n, v := range wr.values {
			if old, ok := m[n]; !ok || !old.at.After(wr.at) {
				m[n] = cell{v, wr.at}
			}
		}
	}
	return m
}

// apply packs each write with Append and merges it over the entity before.
func apply(t *testing.T, mem memory.Allocator, writes []write) string {
	t.Helper()
	var stored string
	for _, wr := range writes {
		rec := record(mem, wr.order, wr.values)
		given, err := Append(nil, wr.at, fields(t, rec.Schema(), true), rec, 0)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if stored, err = Merge(stored, string(given)); err != nil {
			t.Fatal(err)
		}
	}
	return stored
}

// shuffled is the schema asking every feature of names, in a shuffled
// order.
func shuffled(rng *rand.Rand, names []string) *arrow.Schema {
	asked := append([]string(nil), names...)
	rng.Shuffle(len(asked), func(i, j int) { asked[i], asked[j] = asked[j], asked[i] })
	fields := make([]arrow.Field, len(asked))
	for i, n := range asked {
		fields[i] = fieldOf(n)
	}
	return arrow.NewSchema(fields, nil)
}

// check reads the features of u's schema from entities (row r is
// entities[r]) with u, and compares values and times with the model's
// (want[r]).
func check(t *testing.T, mem memory.Allocator, schema *arrow.Schema, entities []string, want []map[string]cell) {
	t.Helper()
	u := NewUnpacker(fields(t, schema, false))
	asked := make([]string, schema.NumFields())
	for i := range asked {
		asked[i] = schema.Field(i).Name
	}
	vb, err := stores.NewValuesBuilder(mem, schema, len(entities))
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Release()
	for r, entity := range entities {
		checkGroups(t, entity)
		if err := u.Unpack(vb, r, entity); err != nil {
			t.Fatal(err)
		}
	}
	got := vb.Finish()
	defer got.Release()
	for r := range entities {
		wantValues := map[string]any{}
		for _, n := range asked {
			wantValues[n] = want[r][n].v
		}
		exp := record(mem, asked, wantValues)
		for i, n := range asked {
			if g := array.NewSlice(got.Values.Column(i), int64(r), int64(r+1)); !array.Equal(g, exp.Column(i)) {
				t.Errorf("entity %d: %s = %v, want %v", r, n, g, exp.Column(i))
				g.Release()
			} else {
				g.Release()
			}
			obs := got.Observed[i].(*array.Timestamp)
			c, stored := want[r][n]
			switch {
			case obs.IsValid(r) != stored:
				t.Errorf("entity %d: %s observed %v, want stored %v", r, n, obs, stored)
			case stored && obs.Value(r).ToTime(arrow.Microsecond) != c.at:
				t.Errorf("entity %d: %s observed %v, want %v", r, n, obs.Value(r).ToTime(arrow.Microsecond), c.at)
			}
		}
		exp.Release()
	}
}

// checkGroups parses entity by hand (docs/STORES.md's layout): one group
// per distinct time, groups by their lowest slot, each slot once.
func checkGroups(t *testing.T, entity string) {
	t.Helper()
	if entity == "" {
		return
	}
	if entity[0] != 3 {
		t.Fatalf("layout byte %d", entity[0])
	}
	b := []byte(entity[5:])
	times, slots := map[string]bool{}, map[int]bool{}
	lowest := -1
	for len(b) > 0 {
		at := string(b[:8])
		if times[at] {
			t.Errorf("two groups of one time")
		}
		times[at] = true
		first, span := int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))
		if first <= lowest {
			t.Errorf("group of slot %d after one of slot %d", first, lowest)
		}
		lowest = first
		bitmap := b[12 : 12+(span+7)/8]
		if bitmap[0]&1 == 0 || bitmap[(span-1)/8]&(1<<((span-1)%8)) == 0 {
			t.Errorf("group's bitmap % x does not start and end with a slot", bitmap)
		}
		b = b[12+len(bitmap):]
		for k := range span {
			if bitmap[k/8]&(1<<(k%8)) == 0 {
				continue
			}
			if slots[first+k] {
				t.Errorf("slot %d twice", first+k)
			}
			slots[first+k] = true
			n := int(b[0])
			if n == 255 {
				n = 4 + int(binary.BigEndian.Uint32(b[1:]))
			}
			b = b[1+n:]
		}
	}
}

func TestMerge(t *testing.T) {
	all := []string{"n1", "x1", "s1", "b1", "l1"}
	for _, c := range []struct {
		name   string
		writes []write
	}{
		{"one write", []write{w(0, "n1", int64(1), "x1", 0.5)}},
		{"given newer", []write{w(0, "n1", int64(1)), w(time.Minute, "n1", int64(2))}},
		{"stored newer", []write{w(time.Minute, "n1", int64(1)), w(0, "n1", int64(2))}},
		{"equal times: given wins", []write{w(0, "n1", int64(1), "s1", "a"), w(0, "s1", "b", "n1", int64(2))}},
		{"null given over a value", []write{w(0, "s1", "a"), w(time.Second, "s1", nil)}},
		{"features only stored stay", []write{w(0, "n1", int64(1), "x1", 1.5), w(time.Minute, "s1", "z")}},
		{"some newer, some older", []write{
			w(time.Minute, "n1", int64(1), "x1", 1.5),
			w(0, "x1", 2.5, "b1", true),
			w(2*time.Minute, "b1", false, "l1", []int64{1, 2}),
		}},
		{"times regroup", []write{
			w(0, "n1", int64(1), "x1", 1.5, "s1", "a"),
			w(time.Minute, "x1", 2.5),
			w(time.Minute, "n1", int64(3), "l1", []int64{}),
		}},
		{"older time after newer", []write{w(time.Hour, "l1", []int64{7}), w(-time.Hour, "l1", []int64{8}, "b1", true)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			check(t, mem, shuffled(rand.New(rand.NewPCG(1, 2)), all), []string{apply(t, mem, c.writes)}, []map[string]cell{model(c.writes)})
		})
	}
}

// Random histories of one entity: several writes of random subsets of
// features in random orders, at few distinct times (many ties), each with
// random values, against the model.
func TestMergeRandomHistories(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 5))
	// The entities are read together, with one Unpacker, as a Get reads
	// them: their features come in many orders.
	entities, names, want := randomHistories(t, mem, rng, 300)
	check(t, mem, shuffled(rng, names), entities, want)
}

// randomHistories is n entities, each written 1–8 times with random
// subsets of names (20 features of 5 types, nulls among them) at times with
// ties, and the model of each.
func randomHistories(t *testing.T, mem memory.Allocator, rng *rand.Rand, n int) (entities, names []string, want []map[string]cell) {
	for _, p := range "nxsbl" {
		for i := range 4 {
			names = append(names, fmt.Sprintf("%c%d", p, i))
		}
	}
	random := func(name string) any {
		if rng.IntN(6) == 0 {
			return nil
		}
		switch name[0] {
		case 'n':
			return rng.Int64() - 1<<62
		case 'x':
			return rng.NormFloat64()
		case 's':
			return strings.Repeat("é", rng.IntN(4))
		case 'b':
			return rng.IntN(2) == 0
		}
		l := make([]int64, rng.IntN(3))
		for i := range l {
			l[i] = rng.Int64N(100)
		}
		return l
	}
	entities = make([]string, n)
	want = make([]map[string]cell, n)
	for h := range entities {
		writes := make([]write, 1+rng.IntN(8))
		for i := range writes {
			wr := write{at: t0.Add(time.Duration(rng.IntN(4)-1) * time.Minute), values: map[string]any{}}
			for _, j := range rng.Perm(len(names))[:1+rng.IntN(len(names))] {
				wr.values[names[j]] = random(names[j])
				wr.order = append(wr.order, names[j])
			}
			writes[i] = wr
		}
		entities[h], want[h] = apply(t, mem, writes), model(writes)
	}
	return entities, names, want
}

// An entity of an older layout or of another directory, or none, counts
// as empty; bytes that are not a packed entity are refused.
func TestMergeEmptyOlderAndCorrupt(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	wr := w(0, "n1", int64(4), "s1", "q")
	rec := record(mem, wr.order, wr.values)
	defer rec.Release()
	given, err := Append(nil, wr.at, fields(t, rec.Schema(), true), rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Append(nil, wr.at.Add(time.Hour), fields(t, rec.Schema(), true), rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(other[1:5], "dir2") // written with another directory, later
	for _, stored := range []string{
		"",
		"\x00\x01v\x00\x00\x00\x01\x00", // layout 0
		"\x02" + string(given[5:13]) + "\x00\x01\x00\x01a\x00\x00\x00\x02\x04\x00", // layout 2
		string(other),
	} {
		got, err := Merge(stored, string(given))
		if err != nil || got != string(given) {
			t.Errorf("Merge(%q, given) = % x, %v; want given", stored, got, err)
		}
	}
	if got, err := Merge(string(given), ""); err != nil || got != string(given) {
		t.Errorf("Merge(stored, \"\") = % x, %v; want stored", got, err)
	}
	for _, c := range []struct{ stored, given string }{
		{"hello", string(given)},
		{string(given), "hello"},
		{string(given[:len(given)-1]), string(given)},
		{string(given), string(given[:len(given)-1])},
		{string(given), "\x03\x00\x05ab\x00"},
		{string(given), "\x02" + string(given[5:])}, // a write is of this layout
	} {
		if _, err := Merge(c.stored, c.given); err == nil || !strings.Contains(err.Error(), "not a packed entity") {
			t.Errorf("Merge(%q, %q): err = %v, want one saying not a packed entity", c.stored, c.given, err)
		}
	}
}
