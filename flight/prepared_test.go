package flight

import (
	"context"
	"strings"
	"testing"

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
