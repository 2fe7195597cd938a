package flight

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// substraitPlan encodes the JSON text of a plan, as another producer (a
// DataFrame library, DuckDB's substrait extension) would send it.
func substraitPlan(t testing.TB, js string) flightsql.SubstraitPlan {
	t.Helper()
	var p pb.Plan
	if err := protojson.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	data, err := proto.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return flightsql.SubstraitPlan{Plan: data, Version: "0.54.0"}
}

// userPlan is `SELECT first_name, last_name FROM user WHERE <cond>` as a
// plan: a read of user's id, first_name and last_name, a filter and a
// project keeping the two names. fn declares the functions cond calls.
func userPlan(fn, cond string) string {
	return `{
  "extensionUrns": [{"extensionUrnAnchor": 1, "urn": "extension:io.substrait:functions_comparison"},
                    {"extensionUrnAnchor": 2, "urn": "extension:io.substrait:functions_string"}],
  "extensions": [` + fn + `],
  "relations": [{"root": {
    "input": {"project": {
      "common": {"emit": {"outputMapping": [3, 4]}},
      "input": {"filter": {
        "input": {"read": {
          "baseSchema": {"names": ["id", "first_name", "last_name"], "struct": {"types": [
            {"string": {"nullability": "NULLABILITY_NULLABLE"}},
            {"string": {"nullability": "NULLABILITY_NULLABLE"}},
            {"string": {"nullability": "NULLABILITY_NULLABLE"}}]}},
          "namedTable": {"names": ["user"]}}},
        "condition": ` + cond + `}},
      "expressions": [
        {"selection": {"directReference": {"structField": {"field": 1}}, "rootReference": {}}},
        {"selection": {"directReference": {"structField": {"field": 2}}, "rootReference": {}}}]}},
    "names": ["first_name", "last_name"]}}],
  "version": {"minorNumber": 54, "producer": "hand-written"}
}`
}

const (
	equalFn = `{"extensionFunction": {"extensionUrnReference": 1, "functionAnchor": 1, "name": "equal:any_any"}}`
	idField = `{"selection": {"directReference": {"structField": {"field": 0}}, "rootReference": {}}}`
)

func strLit(s string) string { return fmt.Sprintf(`{"literal": {"string": %q}}`, s) }

func TestSubstraitSameBatchAsSQL(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	run := func(info *arrowflight.FlightInfo, err error) ([]string, *arrow.Schema) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		return resultRows(recs), schema
	}
	want, wantSchema := run(cl.Execute(ctx, `SELECT first_name, last_name FROM user WHERE id IN ('u1', 'u2', 'u3')`))
	if len(want) != 3 || want[0] != "First1|Last1" {
		t.Fatalf("SQL rows %v", want)
	}
	eq := func(v string) string {
		return `{"scalarFunction": {"functionReference": 1, "outputType": {"bool": {}}, "arguments": [{"value": ` + idField + `}, {"value": ` + strLit(v) + `}]}}`
	}
	for name, cond := range map[string]string{
		"SingularOrList": `{"singularOrList": {"value": ` + idField + `, "options": [` + strLit("u1") + `, ` + strLit("u2") + `, ` + strLit("u3") + `]}}`,
		"or of equals":   `{"scalarFunction": {"functionReference": 2, "outputType": {"bool": {}}, "arguments": [{"value": ` + eq("u1") + `}, {"value": ` + eq("u2") + `}, {"value": ` + eq("u3") + `}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			fns := equalFn + `, {"extensionFunction": {"extensionUrnReference": 3, "functionAnchor": 2, "name": "or:bool"}}`
			plan := substraitPlan(t, userPlan(fns, cond))
			got, schema := run(cl.ExecuteSubstrait(ctx, plan))
			if !schema.Equal(wantSchema) {
				t.Errorf("schema %s, want %s", schema, wantSchema)
			}
			compareRows(t, got, want)
			sr, err := cl.GetExecuteSubstraitSchema(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := arrowflight.DeserializeSchema(sr.GetSchema(), mem); err != nil || !s.Equal(wantSchema) {
				t.Errorf("GetSchemaSubstraitPlan = %v, %v", s, err)
			}
		})
	}
}

func TestSubstraitPrepared(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	param := `{"dynamicParameter": {"type": {"string": {"nullability": "NULLABILITY_NULLABLE"}}, "parameterReference": 0}}`
	cond := `{"scalarFunction": {"functionReference": 1, "outputType": {"bool": {}}, "arguments": [{"value": ` + idField + `}, {"value": ` + param + `}]}}`
	sub, err := cl.PrepareSubstrait(ctx, substraitPlan(t, userPlan(equalFn, cond)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	sql, err := cl.Prepare(ctx, `SELECT first_name, last_name FROM user WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer sql.Close(ctx)
	if !sub.ParameterSchema().Equal(sql.ParameterSchema()) || !sub.DatasetSchema().Equal(sql.DatasetSchema()) {
		t.Fatalf("schemas: Substrait %s / %s, SQL %s / %s", sub.ParameterSchema(), sub.DatasetSchema(), sql.ParameterSchema(), sql.DatasetSchema())
	}
	exec := func(stmt *flightsql.PreparedStatement) []string {
		t.Helper()
		b := array.NewRecordBuilder(mem, stmt.ParameterSchema())
		for _, k := range []string{"u9", "nobody", "u1", "u9"} {
			b.Field(0).(*array.StringBuilder).Append(k)
		}
		params := b.NewRecordBatch()
		b.Release()
		stmt.SetParameters(params)
		params.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		return resultRows(recs)
	}
	want := exec(sql)
	if len(want) != 4 || want[0] != "First9|Last9" {
		t.Fatalf("SQL rows %v", want)
	}
	compareRows(t, exec(sub), want)
}

func TestSubstraitErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	in := `{"singularOrList": {"value": ` + idField + `, "options": [` + strLit("u1") + `]}}`
	tests := []struct {
		name string
		plan []byte
		code codes.Code
		msg  string
	}{
		{"not protobuf", []byte("SELECT 1"), codes.InvalidArgument, "not a valid protobuf Plan"},
		{"truncated", substraitPlan(t, userPlan(equalFn, in)).Plan[:40], codes.InvalidArgument, "not a valid protobuf Plan"},
		{"a sort", substraitPlan(t, `{"relations": [{"root": {"input": {"sort": {"input": {"read": {"namedTable": {"names": ["user"]}, "baseSchema": {"names": ["id"]}}}}}}}]}`).Plan,
			codes.Unimplemented, "sort relations are not supported"},
		{"a join", substraitPlan(t, `{"relations": [{"root": {"input": {"join": {}}}}]}`).Plan, codes.Unimplemented, "join relations are not supported"},
		{"a function fletch lacks", substraitPlan(t, userPlan(`{"extensionFunction": {"extensionUrnReference": 2, "functionAnchor": 1, "name": "like:str_str"}}`,
			`{"scalarFunction": {"functionReference": 1, "arguments": [{"value": `+idField+`}, {"value": `+strLit("u%")+`}]}}`)).Plan,
			codes.InvalidArgument, "extension:io.substrait:functions_string#like:str_str"},
		{"a range", substraitPlan(t, userPlan(`{"extensionFunction": {"extensionUrnReference": 1, "functionAnchor": 1, "name": "gt:any_any"}}`,
			`{"scalarFunction": {"functionReference": 1, "arguments": [{"value": `+idField+`}, {"value": `+strLit("u1")+`}]}}`)).Plan,
			codes.InvalidArgument, "unsupported condition (function extension:io.substrait:functions_comparison#gt:any_any)"},
		{"unknown table", substraitPlan(t, strings.Replace(userPlan(equalFn, in), `["user"]`, `["usr"]`, 1)).Plan, codes.InvalidArgument, `unknown table "usr" (did you mean "user"?)`},
		{"unknown column", substraitPlan(t, strings.Replace(userPlan(equalFn, in), `"first_name", "last_name"], "struct"`, `"frist_name", "last_name"], "struct"`, 1)).Plan,
			codes.InvalidArgument, `unknown column "frist_name" of table user (did you mean "first_name"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.ExecuteSubstrait(ctx, flightsql.SubstraitPlan{Plan: tt.plan})
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Errorf("error %v, want %s containing %q", err, tt.code, tt.msg)
			}
		})
	}

	// The server still answers.
	if _, err := cl.Execute(ctx, `SELECT first_name FROM user WHERE id = 'u1'`); err != nil {
		t.Fatal(err)
	}
}

func TestStatementTickets(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	const sql = `SELECT first_name FROM user WHERE id = 'u2'`
	doGet := func(handle []byte) ([]string, error) {
		ticket, err := flightsql.CreateStatementQueryTicket(handle)
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := cl.DoGet(ctx, &arrowflight.Ticket{Ticket: ticket})
		if err != nil {
			return nil, err
		}
		defer rdr.Release()
		var rows []string
		for rdr.Next() {
			rows = append(rows, resultRows([]arrow.RecordBatch{rdr.RecordBatch()})...)
		}
		return rows, rdr.Err()
	}
	// The first format, SQL text as the handle, is still read.
	if rows, err := doGet([]byte(sql)); err != nil || fmt.Sprint(rows) != "[First2]" {
		t.Errorf("a ticket of SQL text = %v, %v", rows, err)
	}
	if rows, err := doGet(append([]byte{ticketTag, ticketVersion, ticketSQL}, sql...)); err != nil || fmt.Sprint(rows) != "[First2]" {
		t.Errorf("a tagged SQL ticket = %v, %v", rows, err)
	}
	for _, bad := range [][]byte{{ticketTag}, {ticketTag, 9, ticketSQL, 'x'}, {ticketTag, ticketVersion, 'z'}} {
		if _, err := doGet(bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ticket %q: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestSubstraitSqlInfo(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	info, err := cl.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerSubstrait, flightsql.SqlInfoFlightSqlServerSubstraitMaxVersion})
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	got := fmt.Sprint(resultRows(recs))
	if !strings.Contains(got, "true") || !strings.Contains(got, "0.85.0") {
		t.Errorf("SqlInfo rows %s", got)
	}
}
