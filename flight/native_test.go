package flight

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// nativeAnswer is what a native query returned.
type nativeAnswer struct {
	schema  *arrow.Schema
	recs    []arrow.RecordBatch
	summary NativeSummary
}

func (a *nativeAnswer) release() { releaseAll(a.recs) }

// exchange sends cmd and the input batches (all of schema in) over a real
// DoExchange and reads the whole answer, as an SDK does: the batches go up
// from a goroutine while the answer is read, since the server answers
// each chunk as it reads it (an input of several chunks written before
// any answer is read stalls once both flow-control windows are full). A
// write error is the server having stopped reading: its answer says why.
func exchange(ctx context.Context, mem memory.Allocator, cl *flightsql.Client, cmd string, in *arrow.Schema, batches ...arrow.RecordBatch) (*nativeAnswer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.Client.DoExchange(ctx)
	if err != nil {
		return nil, err
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		w := arrowflight.NewRecordWriter(stream, ipc.WithSchema(in), ipc.WithAllocator(mem))
		w.SetFlightDescriptor(&arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: []byte(cmd)})
		for _, b := range batches {
			if w.Write(b) != nil {
				break
			}
		}
		w.Close()
		stream.CloseSend()
	}()
	defer func() { cancel(); <-sent }()
	rdr, err := arrowflight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	a := &nativeAnswer{schema: rdr.Schema()}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		a.recs = append(a.recs, rec)
		if md := rdr.LatestAppMetadata(); len(md) > 0 {
			if err := json.Unmarshal(md, &a.summary); err != nil {
				a.release()
				return nil, fmt.Errorf("summary %q: %v", md, err)
			}
		}
	}
	if err := rdr.Err(); err != nil {
		a.release()
		return nil, err
	}
	return a, nil
}

// strings makes a one-column batch of text values.
func stringBatch(mem memory.Allocator, name string, vals ...string) arrow.RecordBatch {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.BinaryTypes.String, Nullable: true}}, nil), []arrow.Array{col}, int64(len(vals)))
}

// nativeOutputs are e2eSelect's columns as native outputs, in each spelling
// the command accepts (qualified, FQN, SQL window, expression).
var nativeOutputs = []string{"id", "user.full_name", "email", "review_count[7d]", "review_count__2592000__", `F.lower(_.full_name).alias("lower_name")`}

func nativeCmd(extra string) string {
	outs, _ := json.Marshal(nativeOutputs)
	return `{"query": {"outputs": ` + string(outs) + extra + `}}`
}

func TestNativeQuery(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	// Input rows in two batches: one answer row per input row, in order.
	keys := []string{"u5", "u1", "nobody", "u1000", "u5", "u77"}
	b1, b2 := stringBatch(mem, "user.id", keys[:4]...), stringBatch(mem, "user.id", keys[4:]...)
	defer b1.Release()
	defer b2.Release()
	a, err := exchange(ctx, mem, cl, nativeCmd(""), b1.Schema(), b1, b2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	names := []string{}
	for _, f := range a.schema.Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "id,user.full_name,email,review_count[7d],review_count__2592000__,lower_name" {
		t.Errorf("columns %s", got)
	}
	compareRows(t, resultRows(a.recs), referenceRows(t, db, keys, e2eNow.Format(time.RFC3339)))
	if a.summary.Rows != int64(len(keys)) || a.summary.Plan != "" || len(a.summary.Errors) != 0 {
		t.Errorf("summary %+v", a.summary)
	}

	// now, and the class named instead of qualifying the inputs.
	at := time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC)
	plain := stringBatch(mem, "id", keys...)
	defer plain.Release()
	a2, err := exchange(ctx, mem, cl, nativeCmd(`, "class": "user", "now": "`+at.Format(time.RFC3339)+`"`), plain.Schema(), plain)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.release()
	compareRows(t, resultRows(a2.recs), referenceRows(t, db, keys, at.Format(time.RFC3339)))
}

// The offline path: each row at its own __as_of__.
func TestNativeQueryPointInTime(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	times := []time.Time{e2eNow, time.Date(2026, 1, 20, 12, 0, 0, 0, time.UTC), time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)}
	keys := []string{"u5", "u1", "u33", "u5", "nobody", "u1000", "u33", "u2"}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user.id", Type: arrow.BinaryTypes.String},
		{Name: "__as_of__", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	for i, k := range keys {
		rb.Field(0).(*array.StringBuilder).Append(k)
		rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(times[i%len(times)].UnixMicro()))
	}
	in := rb.NewRecordBatch()
	rb.Release()
	defer in.Release()
	a, err := exchange(ctx, mem, cl, nativeCmd(`, "meta": true`), schema, in)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	got := resultRows(a.recs)
	for i, k := range keys {
		want := pointInTimeRows(t, db, []string{k}, times[i%len(times)].Format(time.RFC3339))[0]
		// With meta, the hit columns follow the outputs.
		cells := strings.Split(got[i], "|")
		if have := strings.Join(cells[:len(nativeOutputs)], "|"); have != want {
			t.Errorf("row %d (%s at %s):\n got %s\nwant %s", i, k, times[i%len(times)], have, want)
		}
		if len(cells) != 2*len(nativeOutputs) {
			t.Fatalf("row %d has %d cells, want outputs and hits", i, len(cells))
		}
	}
	if f := a.schema.Field(len(nativeOutputs)); f.Name != "id"+HitSuffix || f.Type.ID() != arrow.BOOL {
		t.Errorf("first hit column %s", f)
	}
}

func TestNativeQueryExplainAndEmpty(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	in := stringBatch(mem, "user.id", "u5")
	defer in.Release()

	a, err := exchange(ctx, mem, cl, nativeCmd(`, "explain": true`), in.Schema(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	if !strings.HasPrefix(a.summary.Plan, "query user -> id, user.full_name") || !strings.Contains(a.summary.Plan, "frame user") || len(resultRows(a.recs)) != 0 {
		t.Errorf("explain: %d rows, plan:\n%s", len(resultRows(a.recs)), a.summary.Plan)
	}

	// No input batch at all: the schema, no rows.
	e, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["full_name"]}}`, in.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer e.release()
	if e.schema.NumFields() != 1 || len(resultRows(e.recs)) != 0 || e.summary.Rows != 0 {
		t.Errorf("empty input: schema %s, %d rows", e.schema, len(resultRows(e.recs)))
	}

	// No outputs: every column of the table.
	all, err := exchange(ctx, mem, cl, `{"query": {}}`, in.Schema(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer all.release()
	if all.schema.NumFields() < 10 || all.schema.Field(0).Name != "id" {
		t.Errorf("all columns: %s", all.schema)
	}
}

func TestNativeQueryErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	in := stringBatch(mem, "user.id", "u5")
	defer in.Release()
	other := stringBatch(mem, "user.nickname", "u5")
	defer other.Release()

	tests := []struct {
		name, cmd string
		in        arrow.RecordBatch
		code      codes.Code
		want      string
	}{
		{"not json", `SELECT 1`, in, codes.InvalidArgument, `{"query": {...}}`},
		{"bad json", `{"query": {"outputs": [}}`, in, codes.InvalidArgument, "invalid JSON at byte 24"},
		{"wrong type", `{"query": {"outputs": "full_name"}}`, in, codes.InvalidArgument, `"query.outputs" at byte 33 must be a []string`},
		{"unknown field", `{"query": {"outptus": ["full_name"]}}`, in, codes.InvalidArgument, `unknown field "outptus" (did you mean "outputs"?)`},
		{"no query", `{}`, in, codes.InvalidArgument, `missing "query"`},
		{"unknown class", `{"query": {"class": "usr", "outputs": ["id"]}}`, in, codes.InvalidArgument, `unknown feature class "usr" (did you mean "user"?)`},
		{"unknown output", `{"query": {"outputs": ["id", "full_nam"]}}`, in, codes.InvalidArgument, `outputs[1] "full_nam"`},
		{"output suggestion", `{"query": {"outputs": ["id", "full_nam"]}}`, in, codes.InvalidArgument, `"full_name"`},
		{"expression typo", `{"query": {"outputs": ["F.lower(_.frist_name)"]}}`, in, codes.InvalidArgument, `outputs[0] "F.lower(_.frist_name)": 1:9: User has no feature frist_name (did you mean "first_name"?)`},
		{"expression syntax", `{"query": {"outputs": ["F.lower(_.first_name"]}}`, in, codes.InvalidArgument, `outputs[0] "F.lower(_.first_name": 1:`},
		{"bad window", `{"query": {"outputs": ["total_spend[8d]"]}}`, in, codes.InvalidArgument, "has no 8d window"},
		{"bad now", `{"query": {"outputs": ["id"], "now": "yesterday"}}`, in, codes.InvalidArgument, "now: invalid timestamp"},
		{"bad staleness key", `{"query": {"outputs": ["id"], "staleness": {"user.ful_name": "0s"}}}`, in, codes.InvalidArgument, `user has no feature "ful_name" (did you mean "full_name"?)`},
		{"bad staleness", `{"query": {"outputs": ["id"], "staleness": {"*": "soon"}}}`, in, codes.InvalidArgument, "staleness of *: invalid duration"},
		{"not an input", `{"query": {"outputs": ["id"]}}`, other, codes.InvalidArgument, `input column "nickname" is not a feature of user`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := exchange(ctx, mem, cl, tt.cmd, tt.in.Schema(), tt.in)
			if err == nil {
				a.release()
			}
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.want) {
				t.Errorf("got %v\nwant %s containing %s", err, tt.code, tt.want)
			}
		})
	}

	// A stream with no descriptor is refused; the server still answers.
	stream, err := cl.Client.DoExchange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty exchange: %v", err)
	}
	a, err := exchange(ctx, mem, cl, nativeCmd(""), in.Schema(), in)
	if err != nil {
		t.Fatal(err)
	}
	a.release()
}

// FuzzNativeCommand: no command text makes the decoder or the request
// checks panic; whatever they refuse is an InvalidArgument.
func FuzzNativeCommand(f *testing.F) {
	f.Add(nativeCmd(`, "meta": true, "now": "2026-01-01", "staleness": {"*": "0s", "user.full_name": "infinity"}`))
	f.Add(`{"query": {"class": "user", "outputs": ["F.lower(_.full_name", "review_count[8d]", "_.reviews[_.star_rating].mean()"]}}`)
	f.Add(`{"query": null}`)
	f.Add(`{"query": {"outputs": [1]}} trailing`)
	srv := newTestServer(f, memory.NewGoAllocator())
	inputs := arrow.NewSchema([]arrow.Field{{Name: "user.id", Type: arrow.BinaryTypes.String}}, nil)
	f.Fuzz(func(t *testing.T, cmd string) {
		_, err := srv.cur.Load().native.Read([]byte(cmd), inputs)
		if err != nil && status.Code(statusOf(err)) != codes.InvalidArgument {
			t.Fatalf("%q: %v", cmd, err)
		}
	})
}
