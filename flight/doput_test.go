package flight

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestMalformedDoPut: whatever a DoPut carries, a missing descriptor, no
// schema, a garbled or truncated schema, a garbled batch, the answer is
// InvalidArgument with no panic text, and the server goes on serving (they
// were Internal "nil pointer dereference", or panic text as the message).
func TestMalformedDoPut(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	stmt, err := cl.Prepare(ctx, `SELECT full_name FROM user WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	cmd, err := anypb.New(&pb.CommandPreparedStatementQuery{PreparedStatementHandle: stmt.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	cmdBytes, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	desc := &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: cmdBytes}
	schema := schemaHeader(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil))
	garbage := []byte(strings.Repeat("\xff\x00garbage", 64))
	for _, c := range []struct {
		name string
		msgs []*arrowflight.FlightData
	}{
		{"a descriptor and no data", []*arrowflight.FlightData{{FlightDescriptor: desc}}},
		{"no descriptor", []*arrowflight.FlightData{{DataHeader: schema}}},
		{"a path descriptor", []*arrowflight.FlightData{{FlightDescriptor: &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorPATH, Path: []string{"x"}}, DataHeader: schema}}},
		{"a garbled schema", []*arrowflight.FlightData{{FlightDescriptor: desc, DataHeader: garbage}}},
		{"a truncated schema", []*arrowflight.FlightData{{FlightDescriptor: desc, DataHeader: schema[:len(schema)/2]}}},
		{"a garbled batch", []*arrowflight.FlightData{{FlightDescriptor: desc, DataHeader: schema}, {DataHeader: garbage, DataBody: garbage}}},
		{"a garbled command", []*arrowflight.FlightData{{FlightDescriptor: &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: garbage}, DataHeader: schema}}},
	} {
		put, err := cl.Client.DoPut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range c.msgs {
			if err := put.Send(m); err != nil {
				break
			}
		}
		_ = put.CloseSend()
		_, err = put.Recv()
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || strings.Contains(st.Message(), "runtime error") || strings.Contains(st.Message(), ".go:") {
			t.Errorf("%s: %v, want InvalidArgument without panic text", c.name, err)
		}
	}
	info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = 'u1'`)
	if err != nil {
		t.Fatalf("the server after malformed DoPuts: %v", err)
	}
	_, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	if got := column(recs, 0); len(got) != 1 || got[0] != "First1 Last1" {
		t.Errorf("the server after malformed DoPuts answered %v", got)
	}
}

// TestLongInputsAreNotEchoed: an error quotes what the caller sent, within
// a bound (a 1 MiB handle came back in a 2.77 MB error, a 1 MB name in a
// 1 MB message).
func TestLongInputsAreNotEchoed(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	huge := strings.Repeat("x", 1<<20)
	_, err := flightsql.NewPreparedStatement(cl, []byte(huge)).Execute(ctx)
	wantShort(t, "a 1 MiB handle", err, codes.NotFound)
	in := stringBatch(mem, "user.id", "u1")
	defer in.Release()
	// Names and SQL texts this long are refused by the limits (limits.go)
	// before they are read: the refusal names the limit, not the input.
	_, err = exchange(ctx, mem, cl, `{"query": {"outputs": ["`+huge+`"]}}`, in.Schema(), in)
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || len(st.Message()) > maxMessage || !strings.Contains(st.Message(), "max_identifier_bytes") {
		t.Errorf("a 1 MiB output name: %s with %d bytes", st.Code(), len(st.Message()))
	}
	_, err = cl.Execute(ctx, `SELECT `+huge+` FROM user WHERE id = 'u1'`)
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || len(st.Message()) > maxMessage || !strings.Contains(st.Message(), "max_sql_bytes") {
		t.Errorf("a 1 MiB column name: %s with %d bytes", st.Code(), len(st.Message()))
	}
	// Within the SQL text's bound, pg_query cuts identifiers at 63 bytes.
	_, err = cl.Execute(ctx, `SELECT `+huge[:100<<10]+` FROM user WHERE id = 'u1'`)
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || len(st.Message()) > maxMessage {
		t.Errorf("a 100 KiB column name: %s with %d bytes", st.Code(), len(st.Message()))
	}
}

func wantShort(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || len(st.Message()) > 2*maxMessage || !strings.Contains(st.Message(), "more bytes") {
		t.Errorf("%s: %s with a message of %d bytes (%.200s), want %s of at most %d saying what it left out", what, st.Code(), len(st.Message()), st.Message(), code, 2*maxMessage)
	}
}

// TestDeepExpressionsAreRefused: a select list or native output nested
// thousands deep is InvalidArgument, refused before planning (SQL
// lower(lower(…)) 4,500 deep and a native F.lower( 10,000 deep kept a core
// busy for seconds after the client gave up).
func TestDeepExpressionsAreRefused(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	sqlDeep := strings.Repeat("lower(", 4500) + "full_name" + strings.Repeat(")", 4500)
	_, err := cl.Execute(ctx, `SELECT `+sqlDeep+` FROM user WHERE id = 'u1'`)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("SQL nested 4,500 deep: %v, want InvalidArgument", err)
	}
	in := stringBatch(mem, "user.id", "u1")
	defer in.Release()
	nativeDeep := strings.Repeat("F.lower(", 10000) + "_.full_name" + strings.Repeat(")", 10000)
	_, err = exchange(ctx, mem, cl, `{"query": {"outputs": ["`+nativeDeep+`"]}}`, in.Schema(), in)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("native nested 10,000 deep: %.300v, want InvalidArgument", err)
	}
}

// TestErrorsShowNoServerPaths: an error about a definition names its file
// relative to the repository (it showed the server's absolute path:
// `/srv/…/thing.py:6:5: feature thing.a depends on itself`).
func TestErrorsShowNoServerPaths(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	src := "from chalk.features import features, _\n\n@features\nclass Thing:\n    id: int\n    a: int = _.b + 1\n    b: int = _.a * 2\n"
	if err := os.WriteFile(filepath.Join(dir, "thing.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cl := serve(t, NewServer(planner.NewEngine(g, nil, mem), Options{Mem: mem}))
	_, err = cl.Execute(context.Background(), `SELECT a FROM thing WHERE id = 1`)
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, "depends on itself") || strings.Contains(msg, dir) || !strings.Contains(msg, "thing.py:") {
		t.Errorf("error %q: want thing.py's position without %s", msg, dir)
	}
}
