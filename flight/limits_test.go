package flight

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/planner"
)

// TestLimits sends a call over each limit of a server whose limits are
// small, on every path that can pass it, and checks the refusal names the
// fletch.yaml key; calls within the limits answer.
func TestLimits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem, planner.WithMaxHasManyRows(40))
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow },
		Limits: Limits{MaxSQLBytes: 200, MaxIdentifierBytes: 24, MaxInputRows: 3, MaxAnswerBytes: 150}}))
	ctx := context.Background()
	refused := func(name string, err error, code codes.Code, key string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want %s naming %s", name, err, code, key)
		}
	}
	sql := func(q string) error {
		info, err := cl.Execute(ctx, q)
		_, err = readHeader(ctx, cl, info, err)
		return err
	}
	if err := sql(`SELECT full_name FROM user WHERE id IN ('u1', 'u2', 'u3')`); err != nil {
		t.Fatalf("within the limits: %v", err)
	}
	refused("long SQL", sql(`SELECT full_name FROM user WHERE id = 'u1'`+strings.Repeat(" ", 200)), codes.ResourceExhausted, "server.limits.max_sql_bytes")
	refused("long name", sql(`SELECT full_name AS `+strings.Repeat("n", 25)+` FROM user WHERE id = 'u1'`), codes.InvalidArgument, "server.limits.max_identifier_bytes")
	refused("IN list", sql(`SELECT full_name FROM user WHERE id IN ('u1', 'u2', 'u3', 'u4')`), codes.ResourceExhausted, "server.limits.max_input_rows")
	_, err := preparedRun(cl, mem)(ctx, []string{"u1", "u2", "u3", "u4"})
	refused("prepared rows", err, codes.ResourceExhausted, "server.limits.max_input_rows")
	in := stringBatch(mem, "user.id", "u1", "u2", "u3", "u4")
	_, err = exchange(ctx, mem, cl, `{"query": {"outputs": ["full_name"]}}`, in.Schema(), in)
	in.Release()
	refused("native rows", err, codes.ResourceExhausted, "server.limits.max_input_rows")
	refused("answer", sql(`SELECT full_name, email, full_name AS a, email AS b, full_name AS c FROM user WHERE id IN ('u1', 'u2', 'u3')`), codes.ResourceExhausted, "server.limits.max_answer_bytes")

	// Has-many rows per entity: u7 gets 30 more reviews than the 20 each
	// user has; the reference counts what each user sees at e2eNow.
	if _, err := db.DB().Exec(`INSERT INTO marketplace_reviews SELECT 100000 + i, TIMESTAMPTZ '2025-06-01 00:00:00+00', 'h', 'b', 3, 'u7', 'i1' FROM range(30) t(i)`); err != nil {
		t.Fatal(err)
	}
	seen := func(user string) (n int) {
		if err := db.DB().QueryRow(`SELECT count(*) FROM marketplace_reviews WHERE user_hid = ? AND created_at <= ?`, user, e2eNow).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	most, few := "u7", "u8"
	if seen(most) <= 40 || seen(few) > 40 {
		t.Fatalf("the reference: %s sees %d reviews, %s %d", most, seen(most), few, seen(few))
	}
	refused("has-many", sql(`SELECT average_rating_given FROM user WHERE id = '`+most+`'`), codes.ResourceExhausted, "server.limits.max_has_many_rows")
	if err := sql(`SELECT average_rating_given FROM user WHERE id = '` + few + `'`); err != nil {
		t.Errorf("a user with few reviews: %v", err)
	}
}

// TestAdmission counts queries in and out, overall and per token.
func TestAdmission(t *testing.T) {
	s := &Server{opts: Options{Limits: Limits{MaxQueries: 3, MaxQueriesPerToken: 2}}}
	as := func(name string) context.Context {
		return context.WithValue(context.Background(), principalKey{}, &auth.Principal{Name: name})
	}
	done1, err1 := s.admit(as("a"))
	done2, err2 := s.admit(as("a"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	_, err := s.admit(as("a"))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_queries_per_token") {
		t.Errorf("a third query of token a: %v", err)
	}
	done3, err := s.admit(as("b"))
	if err != nil {
		t.Fatalf("token b: %v", err)
	}
	if _, err := s.admit(context.Background()); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server.limits.max_queries") {
		t.Errorf("a fourth query: %v", err)
	}
	done1()
	if done, err := s.admit(as("a")); err != nil {
		t.Errorf("token a after one of its queries answered: %v", err)
	} else {
		done()
	}
	done2()
	done3()
	if n := s.admission.running.Load(); n != 0 || len(s.admission.byToken) != 0 {
		t.Errorf("after every query: %d running, tokens %v", n, s.admission.byToken)
	}
}

// TestExpressionLimits: server.limits.max_expression_depth lowers and
// raises the nesting taken (up to statement.MaxDepth) and
// max_expression_nodes bounds a query's expressions, each refused before
// planning and naming its key, on the SQL and native paths; a query
// within them answers as DuckDB does.
func TestExpressionLimits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem)
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow },
		Limits: Limits{MaxExpressionDepth: 1000, MaxExpressionNodes: 1200}}))
	ctx := context.Background()
	nested := func(depth int) string {
		return strings.Repeat("lower(", depth-1) + "full_name" + strings.Repeat(")", depth-1)
	}
	run := func(q string) ([]string, error) { return sqlRows(ctx, cl, q) }
	// 1000 deep: more than the default 256, within the configured bound.
	got, err := run(`SELECT id, ` + nested(1000) + ` FROM user WHERE id IN ('u3', 'u44')`)
	if err != nil {
		t.Fatalf("nested 1000 deep with max_expression_depth 1000: %v", err)
	}
	var want []string
	for _, id := range []string{"u3", "u44"} {
		var name string
		if err := db.DB().QueryRow(`SELECT lower(first_name || ' ' || last_name) FROM marketplace_users WHERE hid = ?`, id).Scan(&name); err != nil {
			t.Fatal(err)
		}
		want = append(want, id+"|"+name)
	}
	compareRows(t, got, want)

	refused := func(name string, err error, code codes.Code, key string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want %s naming %s", name, err, code, key)
		}
	}
	_, err = run(`SELECT ` + nested(1001) + ` FROM user WHERE id = 'u3'`)
	refused("SQL 1001 deep", err, codes.InvalidArgument, "server.limits.max_expression_depth")
	in := stringBatch(mem, "user.id", "u1")
	defer in.Release()
	_, err = exchange(ctx, mem, cl, `{"query": {"outputs": ["`+strings.Repeat("F.lower(", 1000)+"_.full_name"+strings.Repeat(")", 1000)+`.alias(\"x\")"]}}`, in.Schema(), in)
	refused("native 1001 deep", err, codes.InvalidArgument, "server.limits.max_expression_depth")
	// 1200 nodes: two outputs of 600 each pass, a third does not.
	_, err = run(`SELECT ` + nested(600) + ` AS a, ` + nested(600) + ` AS b FROM user WHERE id = 'u3'`)
	if err != nil {
		t.Errorf("1200 nodes: %v", err)
	}
	_, err = run(`SELECT ` + nested(600) + ` AS a, ` + nested(600) + ` AS b, full_name FROM user WHERE id = 'u3'`)
	refused("1201 nodes", err, codes.ResourceExhausted, "server.limits.max_expression_nodes")
	lower600 := strings.Repeat("F.lower(", 599) + "_.full_name" + strings.Repeat(")", 599)
	_, err = exchange(ctx, mem, cl, `{"query": {"outputs": ["`+lower600+`.alias(\"a\")", "`+lower600+`.alias(\"b\")", "first_name"]}}`, in.Schema(), in)
	refused("native 1201 nodes", err, codes.ResourceExhausted, "server.limits.max_expression_nodes")
}

// TestQueryMemory: with server.limits.max_query_memory, a query whose
// has-many reads every user's reviews (20,000 rows) holds more than the
// budget and fails ResourceExhausted naming the key, having released
// everything it allocated (the checked allocator below the budget); a
// query of a few users within it answers as DuckDB does, and so does the
// server after the refusal.
func TestQueryMemory(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem, planner.WithMaxQueryMemory(256<<10))
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow }}))
	ctx := context.Background()
	query := func(ids []string) ([]string, error) {
		return sqlRows(ctx, cl, `SELECT id, average_rating_given FROM user WHERE id IN `+inList(ids))
	}
	reference := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			var avg sql.NullFloat64
			if err := db.DB().QueryRow(`SELECT avg(star_rating) FROM marketplace_reviews WHERE user_hid = ? AND created_at <= ?`, id, e2eNow).Scan(&avg); err != nil {
				t.Fatal(err)
			}
			v := "(null)"
			if avg.Valid {
				v = strconv.FormatFloat(avg.Float64, 'g', -1, 64)
			}
			out = append(out, id+"|"+v)
		}
		return out
	}
	few := []string{"u5", "u1", "u999"}
	got, err := query(few)
	if err != nil {
		t.Fatalf("a query within the budget: %v", err)
	}
	compareRows(t, got, reference(few))

	all := make([]string, 1000)
	for i := range all {
		all[i] = "u" + strconv.Itoa(i+1)
	}
	_, err = query(all)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server.limits.max_query_memory") || !strings.Contains(err.Error(), "256 KiB") {
		t.Errorf("every user's reviews with a 256 KiB budget: %v, want ResourceExhausted naming server.limits.max_query_memory", err)
	}
	got, err = query(few)
	if err != nil {
		t.Fatalf("after a refusal: %v", err)
	}
	compareRows(t, got, reference(few))
}

// sqlRows runs q and reads its answer's rows (resultRows), or the error
// of either call.
func sqlRows(ctx context.Context, cl *flightsql.Client, q string) ([]string, error) {
	info, err := cl.Execute(ctx, q)
	if err != nil {
		return nil, err
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
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
