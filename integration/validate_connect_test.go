package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// The repository TestCLIValidateConnect and TestCLIValidateConnectStores
// check: Account read from a DuckDB source, Customer from Postgres.
const (
	accountsPy = `from datetime import datetime

from chalk.features import features

@features
class Account:
    id: int
    email: str
    balance: float

@features
class Customer:
    id: int
    name: str
    joined_at: datetime
`
	accountsSQL  = "-- resolves: Account\n-- source: local\nselect id, email, balance from vc_accounts\n"
	customersSQL = "-- resolves: Customer\n-- source: pg\nselect id, name, joined_at from vc_customers where joined_at <= ${now}\n"
)

// TestCLIValidateConnect: `fletch validate --connect` checks every SQL
// resolver against its real source (a DuckDB file, the test PostgreSQL)
// and says what is wrong at the resolver's or fletch.yaml's line, all at
// once, writing nothing: no DuckDB file is created, no .fletch/ appears.
func TestCLIValidateConnect(t *testing.T) {
	dsn := pgtest.DSN(t) // a private schema; skips without FLETCH_TEST_POSTGRES
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE vc_customers (id bigint PRIMARY KEY, name text, joined_at timestamptz);
INSERT INTO vc_customers VALUES (1, 'ada', '2024-01-01')`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}

	const yaml = "sources:\n  local:\n    kind: duckdb\n    path: data.duckdb\n  pg:\n    kind: postgres\n    dsn: %DSN%\n"
	for _, tc := range []struct {
		name string
		// replace edits the repository's files (file name → old, new)
		replace map[string][2]string
		noDB    bool // no data.duckdb
		held    bool // data.duckdb open in another process
		ok      []string
		want    []string // each in stderr, REPO for the repository
		wantNot string
	}{
		{name: "good", ok: []string{
			"ok: 2 feature classes, 6 features, 2 SQL resolvers, 0 Python resolvers\n",
			"  source local (duckdb REPO/data.duckdb, read-only): 1 SQL resolver(s) checked\n",
			"  source pg (postgres, connected): 1 SQL resolver(s) checked\n",
		}},
		{name: "missing table", replace: map[string][2]string{"customers.sql": {"from vc_customers", "from vc_customer"}},
			want: []string{`REPO/customers.sql:1:1: resolver customers (source "pg"): the source refuses the query: postgres source pg: ERROR: relation "vc_customer" does not exist (SQLSTATE 42P01)`}},
		{name: "misspelled column", replace: map[string][2]string{
			"accounts.sql":  {"select id, email", "select id, emial as email"},
			"customers.sql": {"id, name,", "id, nme as name,"}},
			want: []string{
				`REPO/accounts.sql:1:1: resolver accounts (source "local"): the source refuses the query: duckdb: Binder Error: Referenced column "emial" not found in FROM clause! Candidate bindings: "email"`,
				`REPO/customers.sql:1:1: resolver customers (source "pg"): the source refuses the query: postgres source pg: ERROR: column "nme" does not exist (SQLSTATE 42703) (hint: Perhaps you meant to reference the column "vc_customers.name".)`,
			}},
		{name: "mapped column the answer lacks", replace: map[string][2]string{"accounts.sql": {"balance from", "balance::double from"}},
			want: []string{`REPO/accounts.sql:1:1: resolver accounts (source "local"): the source answers no column balance, which fills account.balance (did you mean the column CAST(balance AS "DOUBLE")? name it: AS balance) (its columns: id, email, CAST(balance AS "DOUBLE"))`}},
		{name: "unreachable postgres", replace: map[string][2]string{"fletch.yaml": {"%DSN%", "postgres://postgres:s3cret@" + closed + "/fletch?sslmode=disable"}},
			want:    []string{`REPO/fletch.yaml:5: source "pg": postgres source pg: cannot connect: failed to connect to`},
			wantNot: "s3cret"},
		{name: "missing duckdb file", noDB: true,
			want: []string{`REPO/fletch.yaml:2: source "local": the DuckDB file REPO/data.duckdb does not exist: serve would start an empty database there`}},
		{name: "held duckdb file", held: true,
			want: []string{`REPO/fletch.yaml:2: source "local": the repository REPO is in use: its database REPO/data.duckdb is open in another process (a fletch serve of it?), and DuckDB lets one process at a time open a file; stop that process first, or validate without --connect`}},
		{name: "all at once", noDB: true, replace: map[string][2]string{"customers.sql": {"from vc_customers", "from vc_customer"}},
			want: []string{`REPO/fletch.yaml:2: source "local": the DuckDB file`, `REPO/customers.sql:1:1: resolver customers (source "pg"): the source refuses`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			srcs := map[string]string{"accounts.py": accountsPy, "accounts.sql": accountsSQL, "customers.sql": customersSQL, "fletch.yaml": yaml}
			for name, r := range tc.replace {
				srcs[name] = strings.Replace(srcs[name], r[0], r[1], 1)
			}
			srcs["fletch.yaml"] = strings.Replace(srcs["fletch.yaml"], "%DSN%", dsn, 1)
			for name, src := range srcs {
				if err := os.WriteFile(filepath.Join(repo, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dbPath := filepath.Join(repo, "data.duckdb")
			if !tc.noDB {
				db := duckdbFile(t, dbPath, `CREATE TABLE vc_accounts (id BIGINT, email VARCHAR, balance DOUBLE);
INSERT INTO vc_accounts VALUES (1, 'a@example.com', 2.5)`)
				if tc.held {
					defer db.Close() // this process holds the file while validate runs
				} else {
					db.Close()
				}
			}
			before := files(t, repo)
			out, stderr, err := fletch(t, "validate", "--connect", "--repo", repo)
			if tc.ok != nil {
				want := strings.ReplaceAll(strings.Join(tc.ok, ""), "REPO", repo)
				if err != nil || out != want {
					t.Errorf("validate --connect: %v\n%s%s\nwant\n%s", err, out, stderr, want)
				}
			} else if err == nil {
				t.Errorf("validate --connect passed:\n%s", out)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "REPO", repo); !strings.Contains(stderr, w) {
					t.Errorf("validate --connect said\n%s\nwant it to contain\n%s", stderr, w)
				}
			}
			if tc.wantNot != "" && strings.Contains(stderr, tc.wantNot) {
				t.Errorf("validate --connect's message shows %q:\n%s", tc.wantNot, stderr)
			}
			if after := files(t, repo); !reflect.DeepEqual(after, before) {
				t.Errorf("validate --connect changed the repository: it had %v, has %v", before, after)
			}
			if _, err := os.Stat(filepath.Join(repo, ".fletch")); !os.IsNotExist(err) {
				t.Errorf("validate --connect made %s/.fletch (%v)", repo, err)
			}
		})
	}
}

// TestCLIValidateConnectStores: --connect reaches the online and offline
// stores without making their tables (nor a database for the embedded
// default, which serve has not made yet).
func TestCLIValidateConnectStores(t *testing.T) {
	redisAddr := requireService(t, "FLETCH_TEST_REDIS")
	dynamo := requireService(t, "FLETCH_TEST_DYNAMODB")
	dsn := pgtest.DSN(t)
	closed, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("vc_%d_%d", os.Getpid(), time.Now().UnixNano())
	const embedded = "ok: 2 feature classes, 6 features, 2 SQL resolvers, 0 Python resolvers\n" +
		"  embedded database REPO/.fletch/fletch.duckdb: not made yet (fletch serve makes it), so the SQL resolvers are not checked\n"
	for _, tc := range []struct {
		name, yaml string
		ok         string // stdout after embedded's lines
		err        string // else the error
	}{
		{"redis and a postgres offline store", "online_store:\n  kind: redis\n  addr: " + redisAddr + "\noffline_store:\n  kind: postgres\n  dsn: " + dsn + "\n",
			"  online store redis: PING answered\n  offline store postgres: connected; its table is not checked (serve makes it when missing)\n", ""},
		{"postgres online store", "online_store:\n  kind: postgres\n  dsn: " + dsn + "\n  table: " + table + "\n",
			"  online store postgres: connected; its tables are not checked (serve makes them when missing)\n", ""},
		{"dynamodb table to create", "online_store:\n  kind: dynamodb\n  table: " + table + "\n  endpoint: " + dynamo + "\n  create_table: true\n",
			"  online store dynamodb: table " + table + " not made yet; serve makes it (create_table)\n", ""},
		// not made by the case above
		{"dynamodb table missing", "online_store:\n  kind: dynamodb\n  table: " + table + "\n  endpoint: " + dynamo + "\n",
			"", "REPO/fletch.yaml:2: online store: dynamodb store: table " + table + " in us-east-1 at " + dynamo + " does not exist"},
		{"redis unreachable", "online_store:\n  kind: redis\n  addr: " + closed + "\n",
			"", "REPO/fletch.yaml:2: online store: redis store: cannot reach " + closed + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			for name, src := range map[string]string{"accounts.py": accountsPy, "accounts.sql": accountsSQL, "customers.sql": customersSQL, "fletch.yaml": tc.yaml} {
				if err := os.WriteFile(filepath.Join(repo, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := files(t, repo)
			out, stderr, err := fletch(t, "validate", "--connect", "--repo", repo)
			if tc.err == "" {
				if want := strings.ReplaceAll(embedded+tc.ok, "REPO", repo); err != nil || out != want {
					t.Errorf("validate --connect: %v\n%s%s\nwant\n%s", err, out, stderr, want)
				}
			} else if want := strings.ReplaceAll(tc.err, "REPO", repo); err == nil || !strings.Contains(stderr, want) {
				t.Errorf("validate --connect: %v\n%s%s\nwant an error containing\n%s", err, out, stderr, want)
			}
			if after := files(t, repo); !reflect.DeepEqual(after, before) {
				t.Errorf("validate --connect changed the repository: it had %v, has %v", before, after)
			}
			if _, err := os.Stat(filepath.Join(repo, ".fletch")); !os.IsNotExist(err) {
				t.Errorf("validate --connect made %s/.fletch (%v)", repo, err)
			}
		})
	}
	// Neither Postgres store made its table in the test's schema.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var made []string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(array_agg(table_name::text), '{}') FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&made); err != nil || len(made) > 0 {
		t.Errorf("validate --connect made the tables %v (%v)", made, err)
	}
}

// TestCLIValidateConnectEmbedded: without sources, the resolvers are
// checked against the database serve made in the repository, read-only.
func TestCLIValidateConnectEmbedded(t *testing.T) {
	repo := t.TempDir()
	for name, src := range map[string]string{"accounts.py": accountsPy, "accounts.sql": accountsSQL, "customers.sql": customersSQL} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(repo, ".fletch"), 0o755); err != nil {
		t.Fatal(err)
	}
	duckdbFile(t, filepath.Join(repo, ".fletch", "fletch.duckdb"), `CREATE TABLE vc_accounts (id BIGINT, email VARCHAR, balance DOUBLE)`).Close()
	before := files(t, repo)
	out, stderr, err := fletch(t, "validate", "--connect", "--repo", repo)
	if want := repo + `/customers.sql:1:1: resolver customers (source "pg"): the source refuses the query: duckdb: Catalog Error: Table with name vc_customers does not exist!`; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("validate --connect: %v\n%s%s\nwant an error containing\n%s", err, out, stderr, want)
	}
	if strings.Contains(stderr, "accounts.sql") {
		t.Errorf("validate --connect refused accounts.sql, whose table is there:\n%s", stderr)
	}
	if after := files(t, repo); !reflect.DeepEqual(after, before) {
		t.Errorf("validate --connect changed the repository: it had %v, has %v", before, after)
	}
	duckdbFile(t, filepath.Join(repo, ".fletch", "fletch.duckdb"), `CREATE TABLE vc_customers (id BIGINT, name VARCHAR, joined_at TIMESTAMPTZ)`).Close()
	out, stderr, err = fletch(t, "validate", "--connect", "--repo", repo)
	if want := "ok: 2 feature classes, 6 features, 2 SQL resolvers, 0 Python resolvers\n  embedded database " + repo + "/.fletch/fletch.duckdb (duckdb, read-only): 2 SQL resolver(s) checked\n"; err != nil || out != want {
		t.Errorf("validate --connect: %v\n%s%s\nwant\n%s", err, out, stderr, want)
	}
}

// duckdbFile makes a DuckDB file by running stmts, and returns it open.
func duckdbFile(t *testing.T, path, stmts string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(stmts); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db
}
