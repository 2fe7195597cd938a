package integration

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fletch-engine/fletch/operators"
)

// client connects a Flight SQL client to the demo; it is closed when t ends.
func client(t *testing.T, mem memory.Allocator) *flightsql.Client {
	t.Helper()
	return dial(t, addr, mem)
}

// dial connects a Flight SQL client to the server at addr; it is closed
// when t ends.
func dial(t *testing.T, addr string, mem memory.Allocator) *flightsql.Client {
	t.Helper()
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cl.Alloc = mem
	t.Cleanup(func() { cl.Close() })
	return cl
}

// fetch reads every endpoint of info and returns the schema and the rows
// as Go values (the records are released); opts go with each DoGet.
func fetch(t *testing.T, ctx context.Context, cl *flightsql.Client, info *flight.FlightInfo, opts ...grpc.CallOption) (*arrow.Schema, [][]any) {
	t.Helper()
	schema, rows, err := readAll(ctx, cl, info, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if schema == nil {
		t.Fatal("no result stream")
	}
	return schema, rows
}

// readAll is fetch returning the error instead of failing the test (the
// schema is nil when there was no result stream).
func readAll(ctx context.Context, cl *flightsql.Client, info *flight.FlightInfo, opts ...grpc.CallOption) (*arrow.Schema, [][]any, error) {
	var schema *arrow.Schema
	var rows [][]any
	for _, ep := range info.Endpoint {
		rdr, err := cl.DoGet(ctx, ep.Ticket, opts...)
		if err != nil {
			return nil, nil, err
		}
		schema = rdr.Schema()
		for rdr.Next() {
			rec := rdr.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]any, rec.NumCols())
				for j, col := range rec.Columns() {
					row[j] = operators.GoValue(col, i)
				}
				rows = append(rows, row)
			}
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			return nil, nil, err
		}
	}
	return schema, rows, nil
}

// oneOf is a reference cell that several values satisfy (ties of max_by).
type oneOf []any

// compareRows checks got against want cell by cell: numbers to a relative
// 1e-9, the rest exactly.
func compareRows(t *testing.T, names []string, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d result rows, want %d (one per input row)", len(got), len(want))
	}
	bad := 0
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("row %d has %d columns, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			if !matches(got[i][j], want[i][j]) {
				if bad++; bad <= 8 {
					t.Errorf("row %d (%v) column %s: got %v, DuckDB says %v", i, want[i][0], names[j], got[i][j], want[i][j])
				}
			}
		}
	}
	if bad > 8 {
		t.Errorf("%d cells differ", bad)
	}
}

func matches(got, want any) bool {
	if cands, ok := want.(oneOf); ok {
		for _, c := range cands {
			if matches(got, c) {
				return true
			}
		}
		return false
	}
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	if g, ok := number(got); ok {
		w, ok := number(want)
		return ok && math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
	}
	if g, ok := got.(time.Time); ok {
		w, ok := want.(time.Time)
		return ok && g.Equal(w)
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case float64:
		return v, true
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f, true
	}
	return 0, false
}
