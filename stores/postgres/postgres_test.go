package postgres

import (
	"context"
	"testing"

	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

func openTest(t testing.TB, o Options, setup string) *Source {
	t.Helper()
	if o.DSN == "" {
		o.DSN = pgtest.DSN(t)
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
