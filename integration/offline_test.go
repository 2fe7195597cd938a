package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/jackc/pgx/v5/stdlib"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// traceHeader is the request and response header naming a query in the
// offline log (docs/FLIGHTSQL.md).
const traceHeader = "x-fletch-trace-id"

// offlineLog is where a test's `fletch serve` logs, and how the test
// reads it back once the server has stopped.
type offlineLog struct {
	yaml   string   // fletch.yaml: the marketplace source and offline_store
	env    []string // for `fletch serve`
	driver string   // database/sql driver and DSN reading the log
	dsn    string
	value  string // SQL: the value column as JSON text
}

// TestOfflineLog serves the marketplace with `offline_store:` configured
// (the test Postgres, then a DuckDB file), runs Flight SQL queries naming
// their trace id with x-fletch-trace-id, with a W3C traceparent, and not at
// all (the server's own id, echoed in the response header), stops the
// server gracefully (the log is written on close) and reads the log with
// SQL: each feature cell answered is logged exactly once, under its
// query's trace id, with the class, key, feature name and value answered,
// observed while the query ran; and the log holds no other trace.
func TestOfflineLog(t *testing.T) {
	for _, store := range []struct {
		name string
		open func(t *testing.T) offlineLog
	}{
		{"postgres", func(t *testing.T) offlineLog {
			dsn := marketplaceInPostgres(t) // a private schema; skips without FLETCH_TEST_POSTGRES
			return offlineLog{
				yaml: "sources:\n  marketplace:\n    kind: postgres\n    dsn: ${FLETCH_IT_MARKETPLACE_DSN}\n" +
					"offline_store:\n  kind: postgres\n  dsn: ${FLETCH_IT_MARKETPLACE_DSN}\n  table: feature_log\n",
				env:    []string{"FLETCH_IT_MARKETPLACE_DSN=" + dsn},
				driver: "pgx", dsn: dsn, value: "value::text",
			}
		}},
		{"duckdb", func(t *testing.T) offlineLog {
			dir := t.TempDir()
			data, log := filepath.Join(dir, "marketplace.duckdb"), filepath.Join(dir, "log.duckdb")
			generateDuckDB(t, data)
			return offlineLog{
				yaml:   fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %q\noffline_store:\n  kind: duckdb\n  path: %q\n  table: feature_log\n", data, log),
				driver: "duckdb", dsn: log, value: "CAST(value AS VARCHAR)",
			}
		}},
	} {
		t.Run(store.name, func(t *testing.T) { checkOfflineLog(t, store.open(t)) })
	}
}

// loggedQuery is a query whose answer is checked against the log.
type loggedQuery struct {
	name     string
	md       []string // request metadata
	want     string   // the trace id; "" is the server's, read from the response header
	class    string   // the class of every answered cell
	sql      string   // the first column is the entity key
	features []string // the logged feature of each further column
	params   map[string][]any

	trace      string  // the trace id echoed
	rows       [][]any // the answer
	start, end time.Time
}

func (q *loggedQuery) run(t *testing.T, cl *flightsql.Client, mem memory.Allocator) {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), q.md...)
	var header metadata.MD
	q.start = time.Now()
	if q.params == nil {
		info, err := cl.Execute(ctx, q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		_, q.rows = fetch(t, ctx, cl, info, grpc.Header(&header))
	} else {
		stmt, err := cl.Prepare(ctx, q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		defer stmt.Close(ctx)
		p := params(t, mem, stmt.ParameterSchema(), q.params)
		stmt.SetParameters(p)
		p.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		_, q.rows = fetch(t, ctx, cl, info, grpc.Header(&header))
	}
	q.end = time.Now()
	echoed := header.Get(traceHeader)
	if len(echoed) != 1 || echoed[0] == "" || (q.want != "" && echoed[0] != q.want) {
		t.Fatalf("%s: response header %s = %q, want %q", q.name, traceHeader, echoed, q.want)
	}
	q.trace = echoed[0]
}

func checkOfflineLog(t *testing.T, store offlineLog) {
	dir := t.TempDir()
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(store.yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	queries := []*loggedQuery{{
		name: "statement, x-fletch-trace-id", md: []string{traceHeader, "it-statement"}, want: "it-statement",
		class:    "user",
		sql:      `SELECT id, full_name, email, "review_count[30d]", average_rating_given, "total_spend[90d]" FROM user WHERE id IN ('1', '2', '3', 'nobody')`,
		features: []string{"full_name", "email", "review_count__2592000__", "average_rating_given", "total_spend__7776000__"},
	}, {
		name:     "statement, no trace id",
		class:    "item",
		sql:      `SELECT id, title, price, total_reviews, "review_count[7d]", is_discounted FROM item WHERE id IN ('10', '11', '12')`,
		features: []string{"title", "price", "total_reviews", "review_count__604800__", "is_discounted"},
	}, {
		name: "prepared, traceparent", md: []string{"traceparent", "00-" + traceID + "-00f067aa0ba902b7-01"}, want: traceID,
		class:    "user_item",
		sql:      `SELECT id, price_diff, price_fit FROM user_item WHERE user_id = ? AND item_id = ?`,
		features: []string{"price_diff", "price_fit"},
		params:   map[string][]any{"user_id": {"1", "5", "7"}, "item_id": {"10", "20", "30"}},
	}}

	served := t.Run("serve", func(t *testing.T) {
		addr, _ := startServe(t, dir, store.env...)
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		cl := dial(t, addr, mem)
		for _, q := range queries {
			q.run(t, cl, mem)
		}
		// An id the log cannot hold as sent fails the query, saying why.
		ctx := metadata.AppendToOutgoingContext(context.Background(), traceHeader, strings.Repeat("x", 129))
		info, err := cl.Execute(ctx, queries[0].sql)
		if err == nil {
			_, _, err = readAll(ctx, cl, info)
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), traceHeader) {
			t.Errorf("a 129-byte %s: %v, want InvalidArgument naming the header", traceHeader, err)
		}
	}) // the server stops here: SIGTERM, a graceful stop, the log written
	if !served {
		return
	}

	db, err := sql.Open(store.driver, store.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := readLog(t, db, store.value)
	traces := map[string]int{}
	for c, l := range log {
		traces[c.trace] += len(l.values)
	}

	for _, q := range queries {
		if traces[q.trace] == 0 {
			t.Errorf("%s: nothing logged under its trace id %q (the log has %v)", q.name, q.trace, traces)
			continue
		}
		delete(traces, q.trace)
		checked := 0
		for _, row := range q.rows {
			for j, f := range q.features {
				c := logCell{q.trace, q.class, fmt.Sprint(row[0]), q.class + "." + f}
				l := log[c]
				switch {
				case l == nil:
					t.Errorf("%s: %s of %s %s answered %v, not logged", q.name, c.feature, c.class, c.key, row[j+1])
				case len(l.values) != 1:
					t.Errorf("%s: %s of %s %s logged %d times: %v", q.name, c.feature, c.class, c.key, len(l.values), l.values)
				case !matches(l.values[0], row[j+1]):
					t.Errorf("%s: %s of %s %s logged %v, answered %v", q.name, c.feature, c.class, c.key, l.values[0], row[j+1])
				case l.observed.Before(q.start.Truncate(time.Microsecond)) || l.observed.After(q.end):
					t.Errorf("%s: %s of %s %s observed at %v, not while the query ran (%v to %v)", q.name, c.feature, c.class, c.key, l.observed, q.start, q.end)
				default:
					checked++
				}
			}
		}
		if want := len(q.rows) * len(q.features); checked != want || want == 0 {
			t.Errorf("%s: %d of %d answered cells logged as answered", q.name, checked, want)
		}
	}
	if len(traces) != 0 {
		t.Errorf("the log holds trace ids no query was given: %v", traces)
	}
}

// logCell is one logged value's place: the run's trace id, the class, the
// entity's key and the feature.
type logCell struct{ trace, class, key, feature string }

// logged is what the offline log holds of a cell.
type logged struct {
	values   []any // one per time it was logged
	observed time.Time
}

// readLog reads an offline log's table feature_log, its values through the
// SQL expression value (JSON text), by cell.
func readLog(t *testing.T, db *sql.DB, value string) map[logCell]*logged {
	t.Helper()
	rows, err := db.Query(`SELECT trace_id, class, entity_key, feature, ` + value + `, observed_at FROM feature_log`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	log := map[logCell]*logged{}
	for rows.Next() {
		var c logCell
		var text sql.NullString
		var observed time.Time
		if err := rows.Scan(&c.trace, &c.class, &c.key, &c.feature, &text, &observed); err != nil {
			t.Fatal(err)
		}
		var v any
		if text.Valid {
			if err := json.Unmarshal([]byte(text.String), &v); err != nil {
				t.Fatalf("logged value %s of %v: %v", text.String, c, err)
			}
		}
		if log[c] == nil {
			log[c] = &logged{observed: observed}
		}
		log[c].values = append(log[c].values, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return log
}
