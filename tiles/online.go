package tiles

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores"
)

// Tiles in the online store (docs/TILES.md "Online serving"): Publish
// copies the recent tiles of the tile store into the online store, one
// value per entity key under the class OnlineClass, so that serving reads
// an entity's tiles with the same batched Get as its cached features (Redis
// MGET, DynamoDB BatchGetItem) and needs no access to the offline store.
// Each value is the entity's tiles of a contiguous covered range [lo, hi)
// with the definition they were computed under: lists of bucket starts and
// of each state, by bucket.

// OnlineClass is the online store's class of s's tiles of bucket d: no
// feature class's table is named so (tables are identifiers, and this one
// starts with two underscores).
func (s *Spec) OnlineClass(d time.Duration) string {
	return "__" + s.Table(d)
}

// Online value fields beside the state lists ("s_" + state name).
const (
	onlineLo      = "lo"
	onlineHi      = "hi"
	onlineDef     = "def"
	onlineBuckets = "buckets"
)

// OnlineSchema is the schema of s's tiles in the online store: lo and hi
// (the covered range, µs), def (Definition), the buckets with tiles and,
// per state, its values by bucket.
func (s *Spec) OnlineSchema() *arrow.Schema {
	f := []arrow.Field{
		{Name: onlineLo, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: onlineHi, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: onlineDef, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: onlineBuckets, Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
	}
	for _, st := range s.States {
		f = append(f, arrow.Field{Name: "s_" + st.Name, Type: arrow.ListOf(st.Type), Nullable: true})
	}
	return arrow.NewSchema(f, nil)
}

// publishBatch is how many entities one Set writes.
const publishBatch = 4096

// Published is what a Publish wrote.
type Published struct {
	Feature  string
	Bucket   time.Duration
	Range    Range // the covered buckets published
	Entities int64
	Tiles    int64
}

// Publish writes to online the tiles of s's bucket d that online serving
// needs: those of the last contiguous range the store covers, from the
// bucket of its end minus horizon (the widest window served), for every
// entity with tiles there. It writes nothing when the store covers
// nothing. A value of an entity without tiles in the range is left as it
// is: it tells the truth about an older range, and serving reads the raw
// events after it.
func Publish(ctx context.Context, mem memory.Allocator, st *Store, online stores.OnlineStore, s *Spec, d, horizon time.Duration) (Published, error) {
	out := Published{Feature: s.Group.QualifiedName(), Bucket: d}
	for _, f := range s.States {
		if err := stores.CacheableType(f.Type); err != nil {
			return out, fmt.Errorf("%s: tiles cannot be stored online: %w", s.Group.QualifiedName(), err)
		}
	}
	cov, err := st.Coverage(ctx, s, d)
	if err != nil || len(cov) == 0 {
		return out, err
	}
	hi := cov[len(cov)-1].Hi
	lo := cov[len(cov)-1].Lo
	for i := len(cov) - 2; i >= 0 && cov[i].Hi >= lo; i-- {
		lo = min(lo, cov[i].Lo)
	}
	lo = max(lo, Bucket(hi-horizon.Microseconds(), d)-d.Microseconds())
	out.Range = Range{lo, hi}
	rec, err := st.Read(ctx, mem, s, d, nil, out.Range)
	if err != nil {
		return out, err
	}
	defer rec.Release()
	n := int(rec.NumRows())
	if n == 0 {
		return out, nil
	}
	// The tiles are ordered by key and bucket: runs of one key.
	same, err := adjacentEqual(rec.Column(0))
	if err != nil {
		return out, err
	}
	var firsts, offsets []int32
	for i := range n {
		if i == 0 || !same(i) {
			firsts = append(firsts, int32(i))
			offsets = append(offsets, int32(i))
		}
	}
	offsets = append(offsets, int32(n))
	observed := time.UnixMicro(hi).UTC()
	schema := s.OnlineSchema()
	for a := 0; a < len(firsts); a += publishBatch {
		b := min(a+publishBatch, len(firsts))
		if err := publishRange(ctx, mem, online, s.OnlineClass(d), schema, rec, firsts[a:b], offsets[a:b+1], out.Range, s.Definition(), observed); err != nil {
			return out, err
		}
	}
	out.Entities, out.Tiles = int64(len(firsts)), int64(n)
	return out, nil
}

// String is a one-line summary of p.
func (p Published) String() string {
	if p.Entities == 0 {
		return fmt.Sprintf("%s (%s buckets): no tiles to publish online", p.Feature, features.FormatDuration(p.Bucket))
	}
	return fmt.Sprintf("%s (%s buckets): %d tiles of %d entities online, buckets %s to %s", p.Feature, features.FormatDuration(p.Bucket), p.Tiles, p.Entities,
		time.UnixMicro(p.Range.Lo).UTC().Format(time.RFC3339), time.UnixMicro(p.Range.Hi).UTC().Format(time.RFC3339))
}

// publishRange writes the entities whose tiles are rec's rows
// offsets[0] .. offsets[len-1] (entity i: offsets[i] .. offsets[i+1]).
func publishRange(ctx context.Context, mem memory.Allocator, online stores.OnlineStore, class string, schema *arrow.Schema, rec arrow.RecordBatch, firsts, offsets []int32, r Range, def string, observed time.Time) error {
	k := len(firsts)
	keys, err := operators.Gather(mem, rec.Column(0), firsts)
	if err != nil {
		return err
	}
	defer keys.Release()
	cols := make([]arrow.Array, schema.NumFields())
	defer release(cols)
	lob, hib, defb := array.NewInt64Builder(mem), array.NewInt64Builder(mem), array.NewStringBuilder(mem)
	defer lob.Release()
	defer hib.Release()
	defer defb.Release()
	for range k {
		lob.Append(r.Lo)
		hib.Append(r.Hi)
		defb.Append(def)
	}
	cols[0], cols[1], cols[2] = lob.NewArray(), hib.NewArray(), defb.NewArray()
	// Lists over a slice of each column: the entities' tiles, by bucket.
	base := offsets[0]
	rel := make([]int32, len(offsets))
	for i, o := range offsets {
		rel[i] = o - base
	}
	offBuf := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(rel))
	for c := 1; c < int(rec.NumCols())-1; c++ { // bucket_start and the states, not key nor events
		child := array.NewSlice(rec.Column(c), int64(base), int64(offsets[k]))
		data := array.NewData(schema.Field(2+c).Type, k, []*memory.Buffer{nil, offBuf}, []arrow.ArrayData{child.Data()}, 0, 0)
		cols[2+c] = array.MakeFromData(data)
		data.Release()
		child.Release()
	}
	vals := array.NewRecordBatch(schema, cols, int64(k))
	defer vals.Release()
	obs := make([]time.Time, k)
	for i := range obs {
		obs[i] = observed
	}
	if err := online.Set(ctx, class, keys, vals, obs); err != nil {
		return fmt.Errorf("online store: %w", err)
	}
	return nil
}

// adjacentEqual returns whether row i of keys equals row i-1.
func adjacentEqual(keys arrow.Array) (func(i int) bool, error) {
	switch k := keys.(type) {
	case *array.Int64:
		v := k.Int64Values()
		return func(i int) bool { return v[i] == v[i-1] }, nil
	case *array.String:
		return func(i int) bool { return k.Value(i) == k.Value(i-1) }, nil
	}
	return nil, fmt.Errorf("tile keys must be int64 or string, not %s", keys.DataType())
}

// Horizon is how far back online serving reads s's tiles of bucket d: the
// widest window they answer.
func (s *Spec) Horizon(d time.Duration) time.Duration {
	var h time.Duration
	for _, w := range s.Group.Windows {
		if s.Group.Materialization.Bucket(w.Window.Duration) == d {
			h = max(h, w.Window.Duration)
		}
	}
	return h
}

// PublishAll publishes s's tiles of every bucket duration it declares
// (Publish), each as far back as its widest window.
func PublishAll(ctx context.Context, mem memory.Allocator, st *Store, online stores.OnlineStore, s *Spec) ([]Published, error) {
	var out []Published
	for _, d := range s.Group.Materialization.Buckets(s.Group.Windows) {
		p, err := Publish(ctx, mem, st, online, s, d, s.Horizon(d))
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}
