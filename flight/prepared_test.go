package flight

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestReadOnly: updates and ingestion are refused with a reason, and the
// server goes on answering.
func TestReadOnly(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	refused := func(what string, err error) {
		t.Helper()
		if st, _ := status.FromError(err); err == nil || st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "read-only") {
			t.Errorf("%s: %v, want Unimplemented saying fletch is read-only", what, err)
		}
	}
	_, err := cl.ExecuteUpdate(ctx, `UPDATE user SET first_name = 'x'`)
	refused("update statement", err)

	stmt, err := cl.Prepare(ctx, `SELECT full_name FROM user WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	b := array.NewRecordBuilder(mem, stmt.ParameterSchema())
	b.Field(0).(*array.StringBuilder).Append("1")
	p := b.NewRecordBatch()
	b.Release()
	stmt.SetParameters(p)
	p.Release()
	_, err = stmt.ExecuteUpdate(ctx)
	refused("prepared update", err)

	info, err := cl.GetCatalogs(ctx)
	if err != nil {
		t.Fatalf("after refusals: %v", err)
	}
	_, recs := fetch(t, ctx, cl, info)
	releaseAll(recs)
}

// TestPreparedSchemas: JDBC reads an empty dataset schema as an update, and
// wants one parameter field per `?`: both are always filled.
func TestPreparedSchemas(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	for _, tt := range []struct {
		sql, dataset, params string
	}{
		{`SELECT full_name, "review_count[7d]" FROM user WHERE id = '1'`, "full_name:utf8 review_count[7d]:int64", ""},
		{`SELECT full_name FROM user WHERE id = ? AND __as_of__ = ?`, "full_name:utf8", "id:utf8 __as_of__:timestamp[ms, tz=UTC]"},
		{`SELECT price_diff FROM user_item WHERE user_id = ? AND item_id = ?`, "price_diff:float64", "user_id:utf8 item_id:utf8"},
	} {
		stmt, err := cl.Prepare(ctx, tt.sql)
		if err != nil {
			t.Fatal(err)
		}
		fields := func(s interface{ Fields() []arrow.Field }) string {
			var out []string
			for _, f := range s.Fields() {
				out = append(out, f.Name+":"+f.Type.String())
			}
			return strings.Join(out, " ")
		}
		if stmt.DatasetSchema() == nil || stmt.ParameterSchema() == nil {
			t.Fatalf("%s: dataset schema %v, parameter schema %v", tt.sql, stmt.DatasetSchema(), stmt.ParameterSchema())
		}
		if got := fields(stmt.DatasetSchema()); got != tt.dataset {
			t.Errorf("%s: dataset schema %s, want %s", tt.sql, got, tt.dataset)
		}
		if got := fields(stmt.ParameterSchema()); got != tt.params {
			t.Errorf("%s: parameter schema %s, want %s", tt.sql, got, tt.params)
		}
		if err := stmt.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTimestampParamUnits: `__as_of__ = ?` is declared in milliseconds,
// the unit the JDBC driver writes whatever is declared, and bound in any
// unit (ADBC and pyarrow send microseconds): every binding answers the
// point-in-time rows DuckDB computes for that instant.
func TestTimestampParamUnits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	stmt, err := cl.Prepare(ctx, `SELECT `+e2eSelect+` FROM user WHERE id = ? AND __as_of__ = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	keys := []string{"u1", "u7", "nobody", "u42", "u1"}
	// A unit mix-up lands in 1970 or far in the future, where no user has
	// features: the instants checked must answer differently.
	if slices.Equal(pointInTimeRows(t, db, keys, e2eNow.Format(time.RFC3339)), pointInTimeRows(t, db, keys, "1970-01-21T00:00:00Z")) {
		t.Fatal("the reference rows do not depend on the time: the test would not see a wrong unit")
	}
	for _, asOf := range []time.Time{e2eNow, time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 9, 23, 59, 59, 0, time.UTC)} {
		want := pointInTimeRows(t, db, keys, asOf.Format(time.RFC3339))
		for _, unit := range []arrow.TimeUnit{arrow.Millisecond, arrow.Microsecond, arrow.Second, arrow.Nanosecond} {
			schema := arrow.NewSchema([]arrow.Field{
				{Name: "id", Type: arrow.BinaryTypes.String},
				{Name: "__as_of__", Type: &arrow.TimestampType{Unit: unit, TimeZone: "UTC"}},
			}, nil)
			b := array.NewRecordBuilder(mem, schema)
			at, err := arrow.TimestampFromTime(asOf, unit)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				b.Field(0).(*array.StringBuilder).Append(k)
				b.Field(1).(*array.TimestampBuilder).Append(at)
			}
			params := b.NewRecordBatch()
			b.Release()
			stmt.SetParameters(params)
			params.Release()
			info, err := stmt.Execute(ctx)
			if err != nil {
				t.Fatalf("%s bound as %s: %v", asOf, unit, err)
			}
			_, recs := fetch(t, ctx, cl, info)
			t.Run(asOf.Format(time.RFC3339)+"/"+unit.String(), func(t *testing.T) { compareRows(t, resultRows(recs), want) })
			releaseAll(recs)
		}
	}
}
