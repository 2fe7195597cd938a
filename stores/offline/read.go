package offline

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

// The read side of the log (docs/STORES.md, "Reading the offline store"):
// a point-in-time (as-of) join of the query's rows against the log's
// table, in one SQL query for all the rows and features — DuckDB's ASOF
// JOIN, Postgres's LATERAL over the (feature, entity_key, observed_at)
// index. For a row (key, t) and a feature, the answer is the value logged
// with the latest observed_at <= t; values logged for the same key and
// feature at the same instant (two queries at one `now`) are told apart by
// the greatest trace_id, so that both stores answer alike.

// asOfQuery is one as-of read, in the log's terms.
type asOfQuery struct {
	class    string
	keys     []string // the rows' keys as logged (rows with a null key are left out)
	rows     []int32  // the query row of each key
	at       []int64  // each key's time, µs since the epoch
	features []string // qualified: class.feature
}

// asOfHit is one value found: query row, feature index, the logged JSON
// (nil: a logged null) and when it was observed (µs).
type asOfHit struct {
	row, feature int32
	value        []byte
	observed     int64
}

// asOfReader is a Sink that can read its table back.
type asOfReader interface {
	asOf(ctx context.Context, q *asOfQuery, hit func(asOfHit)) error
}

var _ stores.OfflineReader = (*Logger)(nil)

// AsOf implements stores.OfflineReader over the logger's sink. It reads
// what is written: values still queued are not seen (Flush first).
func (l *Logger) AsOf(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, at []int64, want *arrow.Schema) (*stores.OnlineValues, error) {
	r, ok := l.sink.(asOfReader)
	if !ok {
		return nil, fmt.Errorf("offline store: this store cannot be read back")
	}
	q := &asOfQuery{class: class, rows: make([]int32, 0, keys.Len())}
	for i := 0; i < keys.Len(); i++ {
		if keys.IsNull(i) {
			continue
		}
		q.keys = append(q.keys, strings.ReplaceAll(keys.ValueStr(i), "\x00", "\uFFFD"))
		q.rows = append(q.rows, int32(i))
		q.at = append(q.at, at[i])
	}
	for _, f := range want.Fields() {
		q.features = append(q.features, class+"."+f.Name)
	}
	n := keys.Len()
	// Each feature's values gather as the text of one JSON array, decoded
	// into its Arrow type at once; observation times into a column.
	values := make([][][]byte, len(q.features))
	observed := make([]*array.TimestampBuilder, len(q.features))
	obsUS := make([][]int64, len(q.features))
	found := make([][]bool, len(q.features))
	for j := range q.features {
		values[j] = make([][]byte, n)
		obsUS[j] = make([]int64, n)
		found[j] = make([]bool, n)
	}
	if len(q.keys) > 0 && len(q.features) > 0 {
		err := r.asOf(ctx, q, func(h asOfHit) {
			values[h.feature][h.row] = h.value
			obsUS[h.feature][h.row] = h.observed
			found[h.feature][h.row] = true
		})
		if err != nil {
			return nil, fmt.Errorf("offline store: reading the log as of the query's times: %w", err)
		}
	}
	out := &stores.OnlineValues{Observed: make([]arrow.Array, 0, len(q.features))}
	cols := make([]arrow.Array, 0, len(q.features))
	release := func() {
		for _, c := range cols {
			c.Release()
		}
		for _, o := range out.Observed {
			o.Release()
		}
	}
	var text bytes.Buffer
	for j, f := range want.Fields() {
		text.Reset()
		text.WriteByte('[')
		for i, v := range values[j] {
			if i > 0 {
				text.WriteByte(',')
			}
			if v == nil {
				text.WriteString("null")
			} else {
				text.Write(v)
			}
		}
		text.WriteByte(']')
		b := array.NewBuilder(mem, f.Type)
		err := b.UnmarshalJSON(text.Bytes())
		if err == nil && b.Len() != n {
			err = fmt.Errorf("%d values for %d rows", b.Len(), n)
		}
		if err != nil {
			b.Release()
			release()
			return nil, fmt.Errorf("offline store: %s: a logged value is not a %s (the feature's type changed since it was logged?): %w", q.features[j], f.Type, err)
		}
		cols = append(cols, b.NewArray())
		b.Release()
		observed[j] = array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
		observed[j].Reserve(n)
		for i := range n {
			if found[j][i] {
				observed[j].Append(arrow.Timestamp(obsUS[j][i]))
			} else {
				observed[j].AppendNull()
			}
		}
		out.Observed = append(out.Observed, observed[j].NewArray())
		observed[j].Release()
	}
	out.Values = array.NewRecordBatch(want, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}
