package main

import (
	"errors"
	"testing"
)

func TestNearestColumn(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer []string
		want   string
	}{
		{"email", []string{"id", "emial"}, ` (did you mean "emial"?)`},
		{"balance", []string{"id", `CAST(balance AS "DOUBLE")`}, ` (did you mean the column CAST(balance AS "DOUBLE")? name it: AS balance)`},
		{"balance", []string{"id", "total"}, ""},
	} {
		if got := nearestColumn(c.name, c.answer); got != c.want {
			t.Errorf("nearestColumn(%q, %q) = %q, want %q", c.name, c.answer, got, c.want)
		}
	}
}

// DuckDB's excerpt of the query quotes the LIMIT 0 wrapper, not the
// resolver's file: it is left out, and the message is one line.
func TestSourceMessage(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{"duckdb: Catalog Error: Table with name x does not exist!\nDid you mean \"y\"?\n\nLINE 1: SELECT * FROM (\n                      ^",
			`duckdb: Catalog Error: Table with name x does not exist! Did you mean "y"?`},
		{"postgres source pg: ERROR: relation \"x\" does not exist (SQLSTATE 42P01)", "postgres source pg: ERROR: relation \"x\" does not exist (SQLSTATE 42P01)"},
	} {
		if got := sourceMessage(errors.New(c.err)); got != c.want {
			t.Errorf("sourceMessage(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
