package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testDSN is the test server's DSN with a search path of a schema private
// to this test, created empty.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("FLETCH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FLETCH_TEST_POSTGRES is not set (scripts/services starts PostgreSQL and sets it)")
		}
		t.Skip("FLETCH_TEST_POSTGRES is not set: start PostgreSQL with scripts/services to run this test")
	}
	schema := fmt.Sprintf("fletch_pg_%d_%s", os.Getpid(), strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+q+" CASCADE; CREATE SCHEMA "+q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+q+" CASCADE")
			conn.Close(ctx)
		}
	})
	return withParam(dsn, "search_path", schema)
}

// withParam adds a connection parameter to a URL or keyword/value DSN.
func withParam(dsn, key, value string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + url.QueryEscape(value)
	}
	return dsn + " " + key + "=" + value
}

func openTest(t testing.TB, o Options, setup string) *Source {
	t.Helper()
	if o.DSN == "" {
		o.DSN = testDSN(t)
	}
	src, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if setup != "" {
		if _, err := src.Pool().Exec(context.Background(), setup); err != nil {
			t.Fatal(err)
		}
	}
	return src
}
