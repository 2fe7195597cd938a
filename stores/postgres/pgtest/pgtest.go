// Package pgtest gives tests a private corner of the test PostgreSQL
// server that scripts/services starts: a DSN whose search path is a fresh
// schema, dropped when the test ends. It knows nothing of fletch's stores.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSN returns the test server's DSN (FLETCH_TEST_POSTGRES) with a search
// path of a new empty schema private to t. Without the variable the test
// is skipped, except under CI=true, where it fails: CI never silently
// skips.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("FLETCH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FLETCH_TEST_POSTGRES is not set (scripts/services starts PostgreSQL and sets it)")
		}
		t.Skip("FLETCH_TEST_POSTGRES is not set: start PostgreSQL with scripts/services to run this test")
	}
	name := strings.ToLower(nonIdent.ReplaceAllString(t.Name(), "_"))
	schema := fmt.Sprintf("t%d_%s", os.Getpid(), name[:min(len(name), 40)])
	q := pgx.Identifier{schema}.Sanitize()
	ctx := context.Background()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("DROP SCHEMA IF EXISTS " + q + " CASCADE; CREATE SCHEMA " + q); err != nil {
		t.Fatalf("pgtest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() { exec("DROP SCHEMA IF EXISTS " + q + " CASCADE") })
	return WithParam(dsn, "search_path", schema)
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// WithParam adds a connection parameter to a URL or keyword/value DSN
// (a later value overrides an earlier one).
func WithParam(dsn, key, value string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + url.QueryEscape(value)
	}
	return dsn + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}
