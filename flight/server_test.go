package flight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// marketplace loads the example repository with the real loaders.
func marketplace(t testing.TB) *features.Graph {
	t.Helper()
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// serve starts srv on a real listener and returns a Flight SQL client.
func serve(t testing.TB, srv *Server) *flightsql.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	cl, err := flightsql.NewClient(lis.Addr().String(), nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return cl
}

// fetch reads every endpoint of info into one table of rows; the caller
// releases the records.
func fetch(t testing.TB, ctx context.Context, cl *flightsql.Client, info *arrowflight.FlightInfo) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	var recs []arrow.RecordBatch
	var schema *arrow.Schema
	for _, ep := range info.Endpoint {
		rdr, err := cl.DoGet(ctx, ep.Ticket)
		if err != nil {
			t.Fatalf("DoGet: %v", err)
		}
		schema = rdr.Schema()
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
		if err := rdr.Err(); err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		rdr.Release()
	}
	return schema, recs
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// column collects a string column of recs.
func column(recs []arrow.RecordBatch, i int) []string {
	var out []string
	for _, r := range recs {
		c := r.Column(i)
		for j := 0; j < c.Len(); j++ {
			out = append(out, c.ValueStr(j))
		}
	}
	return out
}

func newTestServer(t testing.TB, mem memory.Allocator) *Server {
	g := marketplace(t)
	srv := NewServer(planner.NewEngine(g, nil, mem), Options{Mem: mem, Version: "test", Expressions: pyExprs(g)})
	return srv
}

func TestMetadata(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	str := func(s string) *string { return &s }

	t.Run("catalogs", func(t *testing.T) {
		info, err := cl.GetCatalogs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if !schema.Equal(schema_ref.Catalogs) {
			t.Errorf("schema %s, want %s", schema, schema_ref.Catalogs)
		}
		if got := strings.Join(column(recs, 0), ","); got != "fletch" {
			t.Errorf("catalogs = %s", got)
		}
	})
	for _, tt := range []struct {
		name string
		opts *flightsql.GetDBSchemasOpts
		want string
	}{
		{"all", &flightsql.GetDBSchemasOpts{}, "fletch.features"},
		{"pattern", &flightsql.GetDBSchemasOpts{DbSchemaFilterPattern: str("feat%")}, "fletch.features"},
		{"pattern without match", &flightsql.GetDBSchemasOpts{DbSchemaFilterPattern: str("x_")}, ""},
		{"other catalog", &flightsql.GetDBSchemasOpts{Catalog: str("main")}, ""},
	} {
		t.Run("schemas "+tt.name, func(t *testing.T) {
			info, err := cl.GetDBSchemas(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			schema, recs := fetch(t, ctx, cl, info)
			defer releaseAll(recs)
			if !schema.Equal(schema_ref.DBSchemas) {
				t.Errorf("schema %s, want %s", schema, schema_ref.DBSchemas)
			}
			var got []string
			cats, schemas := column(recs, 0), column(recs, 1)
			for i := range cats {
				got = append(got, cats[i]+"."+schemas[i])
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("schemas = %v, want %s", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		opts *flightsql.GetTablesOpts
		want string
	}{
		{"all", &flightsql.GetTablesOpts{}, "item,item_price,review,seller,user,user_item"},
		{"pattern", &flightsql.GetTablesOpts{TableNameFilterPattern: str("user%")}, "user,user_item"},
		{"underscore is one character", &flightsql.GetTablesOpts{TableNameFilterPattern: str("use_")}, "user"},
		{"escaped underscore", &flightsql.GetTablesOpts{TableNameFilterPattern: str(`user\_%`)}, "user_item"},
		{"table type", &flightsql.GetTablesOpts{TableTypes: []string{"VIEW"}}, ""},
		{"with schemas", &flightsql.GetTablesOpts{IncludeSchema: true, TableTypes: []string{"TABLE"}}, "item,item_price,review,seller,user,user_item"},
	} {
		t.Run("tables "+tt.name, func(t *testing.T) {
			info, err := cl.GetTables(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := schema_ref.Tables
			if tt.opts.IncludeSchema {
				want = schema_ref.TablesWithIncludedSchema
			}
			infoSchema, err := arrowflight.DeserializeSchema(info.Schema, mem)
			if err != nil {
				t.Fatal(err)
			}
			schema, recs := fetch(t, ctx, cl, info)
			defer releaseAll(recs)
			if !schema.Equal(want) || !infoSchema.Equal(want) {
				t.Errorf("schema %s (FlightInfo %s), want %s", schema, infoSchema, want)
			}
			if got := strings.Join(column(recs, 2), ","); got != tt.want {
				t.Errorf("tables = %s, want %s", got, tt.want)
			}
			if !tt.opts.IncludeSchema {
				return
			}
			// The user table: scalar features, windows by FQN, relations
			// left out; types per DESIGN §4.
			names := column(recs, 2)
			for _, r := range recs {
				for i := 0; i < int(r.NumRows()); i++ {
					if names[i] != "user" {
						continue
					}
					ts, err := arrowflight.DeserializeSchema(r.Column(4).(*array.Binary).Value(i), mem)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, f := range ts.Fields() {
						got = append(got, f.Name+":"+f.Type.String())
					}
					wantCols := "id:utf8 created_at:timestamp[us, tz=UTC] first_name:utf8 last_name:utf8 email:utf8 birthday:date32 full_name:utf8 average_rating_given:float64 " +
						"review_count__604800__:int64 review_count__2592000__:int64 review_count__5184000__:int64 average_purchase_price:float64 " +
						"total_spend__2592000__:float64 total_spend__7776000__:float64 name_email_sim:float64"
					if strings.Join(got, " ") != wantCols {
						t.Errorf("user columns:\n got %s\nwant %s", strings.Join(got, " "), wantCols)
					}
					if tn, _ := ts.Field(0).Metadata.GetValue(flightsql.TableNameKey); tn != "user" {
						t.Errorf("column metadata table name = %q", tn)
					}
				}
			}
		})
	}
	t.Run("table types", func(t *testing.T) {
		info, err := cl.GetTableTypes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if !schema.Equal(schema_ref.TableTypes) || strings.Join(column(recs, 0), ",") != "TABLE" {
			t.Errorf("table types: %s %v", schema, column(recs, 0))
		}
	})
	t.Run("sql info", func(t *testing.T) {
		ids := []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerName, flightsql.SqlInfoFlightSqlServerVersion,
			flightsql.SqlInfoFlightSqlServerReadOnly, flightsql.SqlInfoFlightSqlServerTransaction, flightsql.SqlInfoIdentifierQuoteChar}
		info, err := cl.GetSqlInfo(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if !schema.Equal(schema_ref.SqlInfo) {
			t.Errorf("schema %s, want %s", schema, schema_ref.SqlInfo)
		}
		got := map[uint32]string{}
		for _, r := range recs {
			names := r.Column(0).(*array.Uint32)
			vals := r.Column(1).(*array.DenseUnion)
			for i := 0; i < int(r.NumRows()); i++ {
				child := vals.Field(vals.ChildID(i))
				got[names.Value(i)] = child.ValueStr(int(vals.ValueOffset(i)))
			}
		}
		want := map[flightsql.SqlInfo]string{
			flightsql.SqlInfoFlightSqlServerName: "fletch", flightsql.SqlInfoFlightSqlServerVersion: "test",
			flightsql.SqlInfoFlightSqlServerReadOnly: "true", flightsql.SqlInfoFlightSqlServerTransaction: "0",
			flightsql.SqlInfoIdentifierQuoteChar: `"`,
		}
		for id, w := range want {
			if got[uint32(id)] != w {
				t.Errorf("SqlInfo %d = %q, want %q", id, got[uint32(id)], w)
			}
		}
	})
}

func TestErrorCodes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	for _, tt := range []struct {
		name, sql string
		code      codes.Code
		msg       string
	}{
		{"unknown table", `SELECT full_name FROM usr WHERE id = '1'`, codes.InvalidArgument, `1:23: unknown table "usr" (did you mean "user"?)`},
		{"unknown column", `SELECT ful_name FROM user WHERE id = '1'`, codes.InvalidArgument, `1:8: unknown column "ful_name" of table user (did you mean "full_name"?)`},
		{"malformed", "SELECT full_name\nFROM user WHERE id = = '1'", codes.InvalidArgument, `2:22: syntax error at or near "="`},
		{"where on a key and a feature", `SELECT full_name FROM user WHERE id = '1' AND emial = 'x'`, codes.InvalidArgument, `emial`},
		{"parameters without binding", `SELECT full_name FROM user WHERE id = ?`, codes.InvalidArgument, `prepare it and bind`},
		{"table function", `SELECT * FROM read_csv('/etc/passwd')`, codes.Unimplemented, `table functions are not supported`},
		{"relational with parameters", `SELECT full_name FROM user WHERE email = ? ORDER BY 1`, codes.Unimplemented, `parameters are supported in feature lookups only`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.Execute(ctx, tt.sql)
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Fatalf("Execute(%q) = %v, want %s containing %q", tt.sql, err, tt.code, tt.msg)
			}
			// The server keeps answering.
			info, err := cl.GetCatalogs(ctx)
			if err != nil {
				t.Fatalf("after a bad query: %v", err)
			}
			_, recs := fetch(t, ctx, cl, info)
			releaseAll(recs)
		})
	}
	t.Run("unknown prepared handle", func(t *testing.T) {
		stmt := flightsql.NewPreparedStatement(cl, []byte("nope"))
		_, err := stmt.Execute(ctx)
		if status.Code(err) != codes.NotFound {
			t.Fatalf("Execute with an unknown handle = %v, want NotFound", err)
		}
	})
}

// TestPanicIsInternal breaks a server on purpose (an engine without a
// graph): the handlers panic, the client gets Internal, and the server
// keeps answering what does not need the graph.
func TestPanicIsInternal(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, NewServer(planner.NewEngine(nil, nil, mem), Options{Mem: mem}))
	ctx := context.Background()
	for range 2 {
		_, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = '1'`)
		if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "runtime error") || !strings.Contains(err.Error(), "logged on the server as ") {
			t.Fatalf("Execute on a broken server = %v, want Internal naming its log line, without the panic's text", err)
		}
		info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{})
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err == nil {
			for rdr.Next() {
			}
			err = rdr.Err()
			rdr.Release()
		}
		if status.Code(err) != codes.Internal {
			t.Fatalf("DoGet tables on a broken server = %v, want Internal", err)
		}
		info, err = cl.GetCatalogs(ctx)
		if err != nil {
			t.Fatalf("GetCatalogs after a panic: %v", err)
		}
		_, recs := fetch(t, ctx, cl, info)
		releaseAll(recs)
	}
}

// TestStatusOfWrapped: a cancellation or deadline wrapped by a front end,
// the planner or a store keeps its code (statusOf compared with == and
// answered Internal).
func TestStatusOfWrapped(t *testing.T) {
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("resolver users: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("fetch: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{&statement.Error{Kind: statement.SourceFailure, Msg: "down"}, codes.Unavailable},
		{fmt.Errorf("bind: %w", &statement.Error{Kind: statement.InvalidInput, Msg: "bad"}), codes.InvalidArgument},
		{errors.New("bug"), codes.Internal},
	} {
		if got := status.Code(statusOf(c.err)); got != c.want {
			t.Errorf("statusOf(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
