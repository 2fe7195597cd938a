package tiles

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores"
)

// ChunkBuckets is how many buckets one backfill step computes and writes
// at once: the unit of resumption. Chunks are aligned to the epoch, so a
// rerun cuts the same chunks.
const ChunkBuckets = 64

// BackfillOptions bound a backfill.
type BackfillOptions struct {
	// Start and End bound the events (zero: all the source holds); the
	// start is widened to its chunk's, the end to its bucket's.
	Start, End time.Time
	// Now is the backfill's clock (zero: time.Now): only buckets complete
	// before it are materialized, so a tile never misses a late event of
	// an open bucket.
	Now time.Time
	// Progress, when set, is called after each chunk.
	Progress func(Report)
}

// Beginning starts the range of a backfill from the first event: the
// buckets before it hold no events (µs since the epoch, year -290,000).
const Beginning = -1 << 62

// empty is a record of s's tiles with no rows.
func (s *Spec) empty(mem memory.Allocator) (arrow.RecordBatch, error) {
	fields := s.Fields()
	cols := make([]arrow.Array, len(fields))
	for i, f := range fields {
		cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
	}
	defer release(cols)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 0), nil
}

// Report is a backfill's progress, or its summary once done.
type Report struct {
	Feature string
	Bucket  time.Duration
	// Chunks is the number of chunks of the range; Done of them are
	// written, Skipped of those were already covered.
	Chunks, Done, Skipped int
	Events, Tiles         int64
	Elapsed               time.Duration
	Range                 Range
}

// Rate is the events read per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// ETA estimates the time left from the chunks computed so far.
func (r Report) ETA() time.Duration {
	computed := r.Done - r.Skipped
	if computed <= 0 || r.Done >= r.Chunks {
		return 0
	}
	return time.Duration(float64(r.Elapsed) / float64(computed) * float64(r.Chunks-r.Done))
}

// Backfill materializes s's tiles of every bucket duration it declares for
// the events of src in the options' range: chunk by chunk, each computed at
// the source and written in one transaction, skipping chunks already
// covered. It returns one report per bucket duration.
func Backfill(ctx context.Context, mem memory.Allocator, src stores.Source, st *Store, s *Spec, opts BackfillOptions) ([]Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var out []Report
	for _, d := range s.Group.Materialization.Buckets(s.Group.Windows) {
		rep, err := backfillBucket(ctx, mem, src, st, s, d, opts)
		if err != nil {
			return out, err
		}
		out = append(out, rep)
	}
	return out, nil
}

func backfillBucket(ctx context.Context, mem memory.Allocator, src stores.Source, st *Store, s *Spec, d time.Duration, opts BackfillOptions) (Report, error) {
	rep := Report{Feature: s.Group.QualifiedName(), Bucket: d}
	if err := st.Prepare(ctx, s, d); err != nil {
		return rep, err
	}
	lo, hi := opts.Start.UnixMicro(), opts.End.UnixMicro()
	if opts.Start.IsZero() || opts.End.IsZero() {
		min, max, ok, err := s.extent(ctx, mem, src)
		if err != nil || !ok {
			return rep, err
		}
		if opts.Start.IsZero() {
			lo = min
		}
		if opts.End.IsZero() {
			hi = max + 1
		}
	}
	L := d.Microseconds() * ChunkBuckets
	// The end: whole buckets, complete ones only.
	hi = min(Bucket(hi-1, d)+d.Microseconds(), Bucket(opts.Now.UnixMicro(), d))
	first := Bucket(lo, time.Duration(L)*time.Microsecond)
	if hi <= first {
		return rep, nil
	}
	rep.Range = Range{first, hi}
	rep.Chunks = int((hi - first + L - 1) / L)
	covered, err := st.Coverage(ctx, s, d)
	if err != nil {
		return rep, err
	}
	done := map[int64]int64{}
	for _, c := range covered {
		done[c.Lo] = c.Hi
	}
	start := time.Now()
	if opts.Start.IsZero() {
		// From the first event the source holds: the buckets before it are
		// known empty, so a window reaching before it reads no events.
		if end, ok := done[Beginning]; !ok || end < first {
			empty, err := s.empty(mem)
			if err != nil {
				return rep, err
			}
			err = st.Replace(ctx, s, d, Range{Beginning, first}, Range{Beginning, first}, empty, 0)
			empty.Release()
			if err != nil {
				return rep, err
			}
		}
	}
	for a := first; a < hi; a += L {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r := Range{a, min(a+L, hi)}
		if end, ok := done[a]; ok && end >= r.Hi {
			rep.Done++
			rep.Skipped++
			continue
		}
		rec, err := s.Compute(ctx, mem, src, d, r, nil)
		if err != nil {
			return rep, err
		}
		events := sum(rec.Column(int(rec.NumCols()) - 1))
		err = st.Replace(ctx, s, d, Range{a, a + L}, r, rec, events)
		tiles := rec.NumRows()
		rec.Release()
		if err != nil {
			return rep, err
		}
		rep.Done++
		rep.Events += events
		rep.Tiles += tiles
		rep.Elapsed = time.Since(start)
		if opts.Progress != nil {
			opts.Progress(rep)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func sum(a arrow.Array) int64 {
	var n int64
	for _, v := range a.(*array.Int64).Int64Values() {
		n += v
	}
	return n
}

// extent is the first and last event time (µs) of s's source rows.
func (s *Spec) extent(ctx context.Context, mem memory.Allocator, src stores.Source) (lo, hi int64, ok bool, err error) {
	dl, err := DialectOf(src)
	if err != nil {
		return 0, 0, false, err
	}
	us := dl.epochUS("_r." + quote(s.Time))
	q := "SELECT min(" + us + ") AS lo, max(" + us + ") AS hi FROM (\n" + stores.TrimStatement(s.Resolver.Query) + "\n) AS _r"
	req := stores.FetchRequest{SQL: q, Schema: arrow.NewSchema([]arrow.Field{
		{Name: "lo", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "hi", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)}
	for range s.Resolver.Params {
		req.Params = append(req.Params, stores.ParamValue{Time: time.Now().UTC()})
	}
	rec, err := src.Fetch(ctx, mem, req)
	if err != nil {
		return 0, 0, false, fmt.Errorf("resolver %s: %w", s.Resolver.Name, err)
	}
	defer rec.Release()
	l, h := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Int64)
	if rec.NumRows() == 0 || l.IsNull(0) {
		return 0, 0, false, nil
	}
	return l.Value(0), h.Value(0), true, nil
}

// String is a one-line summary of r.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s buckets): %d/%d chunks", r.Feature, features.FormatDuration(r.Bucket), r.Done, r.Chunks)
	if r.Skipped > 0 {
		fmt.Fprintf(&b, " (%d already covered)", r.Skipped)
	}
	fmt.Fprintf(&b, ", %d events → %d tiles in %s (%.0f events/s)", r.Events, r.Tiles, r.Elapsed.Round(time.Millisecond), r.Rate())
	return b.String()
}
