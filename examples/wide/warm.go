package wide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// WarmOptions say which server to warm and with what.
type WarmOptions struct {
	Addr     string // host:port of a fletch server (plaintext gRPC)
	Class    string // the cacheable class (CachedClass)
	Features int    // features f0..f{Features-1}: every one a benchmark will ask
	Entities int    // ids 1..Entities
	// Chunk is the number of ids per query (default 10,000). A chunk's
	// write-back must reach the store within the planner's 10 s per Set:
	// DynamoDB Local needs a few hundred.
	Chunk int
	// Timeout bounds the wait for the write-backs (default 5 minutes).
	Timeout time.Duration
	Log     io.Writer // progress lines; nil: none
}

// WarmStats say what warming did.
type WarmStats struct {
	Queries int           // native queries sent, fill and checks
	Fill    time.Duration // the first pass over every id
	Drain   time.Duration // until every cell was served from the store
}

// Warm puts every entity's features into the server's online store before
// a measurement: one pass of native queries (docs/NATIVE.md) over all ids
// in chunks computes the features and queues their write-back; then the
// chunks are asked again, with `meta`, until every cell of every chunk is
// served from the store. Every answer is checked against Value.
//
// Asking a chunk whose write-back has not landed yet computes and queues it
// again, so the checks go in write order, stop at the first chunk still
// missing, and back off (0.5 s doubling up to 8 s).
func Warm(ctx context.Context, o WarmOptions) (WarmStats, error) {
	if o.Chunk <= 0 {
		o.Chunk = 10_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	var st WarmStats
	cl, err := arrowflight.NewClientWithMiddleware(o.Addr, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return st, fmt.Errorf("wide: warm %s: %w", o.Addr, err)
	}
	defer cl.Close()
	cmd, err := json.Marshal(map[string]any{"query": map[string]any{"class": o.Class, "outputs": FeatureNames(o.Features), "meta": true}})
	if err != nil {
		return st, err
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	var chunks [][2]int64
	for lo := int64(1); lo <= int64(o.Entities); lo += int64(o.Chunk) {
		chunks = append(chunks, [2]int64{lo, min(lo+int64(o.Chunk)-1, int64(o.Entities))})
	}
	start := time.Now()
	for _, c := range chunks {
		if _, err := askChunk(ctx, cl, cmd, c[0], c[1], o.Features); err != nil {
			return st, fmt.Errorf("wide: warm %s, ids %d..%d: %w", o.Addr, c[0], c[1], err)
		}
		st.Queries++
	}
	st.Fill = time.Since(start)
	logf("warm: computed %d entities × %d features of %s in %d queries, %s", o.Entities, o.Features, o.Class, len(chunks), st.Fill.Round(time.Millisecond))

	start = time.Now()
	deadline := start.Add(o.Timeout)
	delay := 500 * time.Millisecond
	for len(chunks) > 0 {
		if time.Now().After(deadline) {
			return st, fmt.Errorf("wide: warm %s: ids %d..%d still not all served from the online store after %s (is the write-back queue dropping writes?)", o.Addr, chunks[0][0], chunks[len(chunks)-1][1], o.Timeout)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(delay):
		}
		for len(chunks) > 0 {
			c := chunks[0]
			misses, err := askChunk(ctx, cl, cmd, c[0], c[1], o.Features)
			st.Queries++
			if err != nil {
				return st, fmt.Errorf("wide: warm %s, ids %d..%d: %w", o.Addr, c[0], c[1], err)
			}
			if misses > 0 {
				logf("warm: ids %d..%d: %d cells not in the store yet; %d chunks left", c[0], c[1], misses, len(chunks))
				break
			}
			chunks = chunks[1:]
		}
		delay = min(2*delay, 8*time.Second)
	}
	st.Drain = time.Since(start)
	logf("warm: every cell served from the online store after %s more (%d queries in all)", st.Drain.Round(time.Millisecond), st.Queries)
	return st, nil
}

// askChunk runs the native query for ids lo..hi and returns how many cells
// were not served from the online store. Values that are not Value's, or a
// wrong row count, are an error.
func askChunk(ctx context.Context, cl arrowflight.Client, cmd []byte, lo, hi int64, n int) (misses int, err error) {
	mem := memory.DefaultAllocator
	b := array.NewInt64Builder(mem)
	for id := lo; id <= hi; id++ {
		b.Append(id)
	}
	ids := b.NewArray()
	b.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{ids}, int64(ids.Len()))
	ids.Release()
	defer in.Release()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.DoExchange(ctx)
	if err != nil {
		return 0, err
	}
	w := arrowflight.NewRecordWriter(stream, ipc.WithSchema(in.Schema()))
	w.SetFlightDescriptor(&arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: cmd})
	if err := w.Write(in); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return 0, err
	}
	rdr, err := arrowflight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return 0, err
	}
	defer rdr.Release()
	if got := rdr.Schema().NumFields(); got != 2*n {
		return 0, fmt.Errorf("the answer has %d columns, want %d features and their hit flags", got, n)
	}
	id := lo
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			if id > hi {
				return 0, fmt.Errorf("more than the %d rows asked", hi-lo+1)
			}
			for f := range n {
				v, ok := rec.Column(f).(*array.Float64)
				if !ok {
					return 0, fmt.Errorf("column %s is %s, want float64", rec.Schema().Field(f).Name, rec.Column(f).DataType())
				}
				if v.IsNull(r) || v.Value(r) != Value(id, f) {
					return 0, fmt.Errorf("entity %d: f%d = %v, want %v", id, f, v.ValueStr(r), Value(id, f))
				}
				if !rec.Column(n + f).(*array.Boolean).Value(r) {
					misses++
				}
			}
			id++
		}
	}
	if err := rdr.Err(); err != nil {
		return 0, err
	}
	if id != hi+1 {
		return 0, fmt.Errorf("%d rows, want %d", id-lo, hi-lo+1)
	}
	return misses, nil
}
