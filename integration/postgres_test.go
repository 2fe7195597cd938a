package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// TestPostgresSource serves the marketplace repository from Postgres (the
// demo's data copied there) with the real `fletch serve`, and checks over
// Flight SQL that it answers as the demo's embedded DuckDB does, for every
// class and feature kind; then that Postgres going away fails the queries
// that need it with Unavailable naming the resolver, while the server
// keeps serving, and that they succeed again once Postgres is back.
func TestPostgresSource(t *testing.T) {
	dsn := marketplaceInPostgres(t)
	proxy, proxied := pgtest.StartProxy(t, dsn)
	ctx := context.Background()

	dir := filepath.Join(workDir, "postgres")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	yaml := "sources:\n  marketplace:\n    kind: postgres\n    dsn: ${FLETCH_IT_MARKETPLACE_DSN}\n    max_conns: 4\n    statement_timeout: 10s\n"
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	pgAddr, _ := startServe(t, dir, "FLETCH_IT_MARKETPLACE_DSN="+proxied)

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	demo, pg := client(t, mem), dial(t, pgAddr, mem)

	ids := func(n int, extra ...string) []any {
		out := make([]any, 0, n+len(extra))
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprint(i))
		}
		for _, e := range extra {
			out = append(out, e)
		}
		return out
	}
	at := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = anchor
			if i%2 == 1 {
				out[i] = anchor.Add(-10 * day)
			}
		}
		return out
	}
	users, items := ids(300, "nobody", "50"), ids(200, "no-such-item")
	pairUsers, pairItems := make([]any, 300), make([]any, 300)
	for i := range pairUsers {
		pairUsers[i], pairItems[i] = fmt.Sprint(1+i*7%1000), fmt.Sprint(1+i*13%500)
	}
	list := func(from, to int) string {
		var xs []string
		for i := from; i <= to; i++ {
			xs = append(xs, fmt.Sprint(i))
		}
		return strings.Join(xs, ", ")
	}
	quoted := func(from, to int) string { return "'" + strings.ReplaceAll(list(from, to), ", ", "', '") + "'" }
	queries := []struct {
		name, sql string
		params    map[string][]any
	}{
		{"user", `SELECT *, "review_count[30d]", lower(full_name) AS lower_name FROM user WHERE id = ? AND __as_of__ = ?`,
			map[string][]any{"id": users, "__as_of__": at(len(users))}},
		{"item", `SELECT * FROM item WHERE id = ? AND __as_of__ = ?`,
			map[string][]any{"id": items, "__as_of__": at(len(items))}},
		{"user_item", `SELECT * FROM user_item WHERE user_id = ? AND item_id = ? AND __as_of__ = ?`,
			map[string][]any{"user_id": pairUsers, "item_id": pairItems, "__as_of__": at(len(pairUsers))}},
		{"review", `SELECT *, "user.full_name", "item.title" FROM review WHERE id IN (` + list(1, 150) + `)`, nil},
		{"seller", `SELECT * FROM seller WHERE id IN (` + quoted(1, 50) + `, 'nobody')`, nil},
		{"item_price", `SELECT * FROM item_price WHERE id IN (` + list(1, 200) + `)`, nil},
	}
	// run answers sql (prepared and bound to p when p is given) with its
	// column names and rows.
	run := func(cl *flightsql.Client, sql string, p map[string][]any) ([]string, [][]any, error) {
		var info *flight.FlightInfo
		var err error
		if p == nil {
			info, err = cl.Execute(ctx, sql)
		} else {
			stmt, perr := cl.Prepare(ctx, sql)
			if perr != nil {
				return nil, nil, perr
			}
			defer stmt.Close(ctx)
			rec := params(t, mem, stmt.ParameterSchema(), p)
			stmt.SetParameters(rec)
			rec.Release()
			info, err = stmt.Execute(ctx)
		}
		if err != nil {
			return nil, nil, err
		}
		schema, rows, err := readAll(ctx, cl, info)
		if err != nil || schema == nil {
			return nil, nil, err
		}
		var names []string
		for _, f := range schema.Fields() {
			names = append(names, f.Name)
		}
		return names, rows, nil
	}
	compare := func(t *testing.T, sql string, p map[string][]any) {
		names, want, err := run(demo, sql, p)
		if err != nil {
			t.Fatalf("the demo: %v", err)
		}
		gotNames, got, err := run(pg, sql, p)
		if err != nil {
			t.Fatalf("the Postgres-backed server: %v", err)
		}
		if strings.Join(gotNames, ",") != strings.Join(names, ",") {
			t.Fatalf("columns %q, the demo answers %q", gotNames, names)
		}
		compareRows(t, names, got, want)
		// The comparison means something only if the answers do.
		valued := 0
		for _, r := range want {
			for _, v := range r[1:] {
				if v != nil {
					valued++
				}
			}
		}
		if valued < len(want)*len(names)/2 {
			t.Errorf("only %d of %d cells have values", valued, len(want)*(len(names)-1))
		}
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) { compare(t, q.sql, q.params) })
	}

	t.Run("postgres down and back", func(t *testing.T) {
		proxy.Stop()
		_, _, err := run(pg, queries[0].sql, queries[0].params)
		st, _ := status.FromError(err)
		if err == nil || st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "resolver") ||
			!strings.Contains(st.Message(), "postgres source marketplace: the database is unreachable") {
			t.Errorf("with Postgres down: %v; want Unavailable naming the resolver and the source", err)
		}
		// The server keeps answering what needs no Postgres.
		if _, err := pg.GetTables(ctx, &flightsql.GetTablesOpts{}); err != nil {
			t.Errorf("metadata with Postgres down: %v", err)
		}
		proxy.Start(t)
		compare(t, queries[0].sql, queries[0].params)
		compare(t, queries[2].sql, queries[2].params)
	})
}

// marketplaceInPostgres copies the demo's data (the same generator and
// anchor) into a private schema of the test Postgres and returns its DSN.
func marketplaceInPostgres(t *testing.T) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	duck.SetMaxOpenConns(1)
	if err := marketplace.Generate(ctx, duck, marketplace.Options{Anchor: anchor}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	err = marketplace.CopyToPostgres(ctx, duck, pool)
	pool.Close()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
