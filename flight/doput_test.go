package flight

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
