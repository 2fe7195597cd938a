package config

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

func TestParseOfflineStore(t *testing.T) {
	t.Setenv("FLETCH_TEST_OFFLINE_DSN", "postgres://u@h/db")
	cases := []struct {
		text string
		want OfflineStoreConfig
	}{
		{"offline_store:\n  kind: postgres\n  dsn: ${FLETCH_TEST_OFFLINE_DSN}\n  table: ml.feature_log\n  queue: 64\n",
			OfflineStoreConfig{Kind: "postgres", DSN: "postgres://u@h/db", Table: "ml.feature_log", Queue: 64, Line: 2}},
		{"offline_store:\n  kind: duckdb\n  path: log.duckdb\n",
			OfflineStoreConfig{Kind: "duckdb", Path: "/repo/log.duckdb", Line: 2}},
		{"offline_store:\n  kind: duckdb\n  path: /data/log.duckdb\n",
			OfflineStoreConfig{Kind: "duckdb", Path: "/data/log.duckdb", Line: 2}},
	}
	for _, c := range cases {
		cfg, err := Parse("/repo/fletch.yaml", []byte(c.text))
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if cfg.OfflineStore != c.want {
			t.Errorf("%q:\n got %+v\nwant %+v", c.text, cfg.OfflineStore, c.want)
		}
	}
	if cfg := Default(); cfg.OfflineStore.Kind != "" {
		t.Errorf("the embedded default logs to %+v", cfg.OfflineStore)
	}

	errs := []struct{ text, want string }{
		{"offline_store:\n  kind: snowflake\n", `f.yaml:2:9: unknown kind "snowflake"`},
		{"offline_store:\n  kind: duckdb\n", `f.yaml:2:3: the duckdb offline store has no path`},
		{"offline_store:\n  kind: duckdb\n  path: \":memory:\"\n", `f.yaml:2:3: the duckdb offline store has no path`},
		{"offline_store:\n  kind: postgres\n", `f.yaml:2:3: the postgres offline store has no dsn`},
		{"offline_store:\n  kind: postgres\n  dsn: x\n  path: y\n", `f.yaml:4:9: the postgres offline store takes a dsn, not a path`},
		{"offline_store:\n  kind: duckdb\n  path: y\n  dsn: x\n", `f.yaml:4:8: the duckdb offline store takes a path, not a dsn`},
		{"offline_store:\n  path: y\n", `f.yaml:2:3: offline_store has no kind`},
		{"offline_store:\n  kind: duckdb\n  tabel: t\n", `f.yaml:3:3: unknown key "tabel" in offline_store (did you mean "table"?)`},
		{"offline_store:\n  kind: duckdb\n  path: y\n  queue: -1\n", `f.yaml:4:10: want a whole number`},
	}
	for _, c := range errs {
		_, err := Parse("f.yaml", []byte(c.text))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %s…", c.text, err, c.want)
		}
	}
}

// logOne logs a value of user.name for key 7 and waits until it is written.
func logOne(t *testing.T, env *Env) {
	t.Helper()
	log := env.OfflineLog()
	if log == nil {
		t.Fatal("no offline log")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	kb := array.NewInt64Builder(mem)
	kb.Append(7)
	vb := array.NewStringBuilder(mem)
	vb.Append("ada")
	keys, vals := kb.NewArray(), vb.NewArray()
	kb.Release()
	vb.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{vals}, 1)
	vals.Release()
	log.Log(&stores.ComputedValues{Class: "user", Keys: keys, Values: rec, Observed: time.Now(), TraceID: "t"})
	log.Flush()
	if s := log.Stats(); s.Written != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOpenOfflineDuckDBSharesASourceFile(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, FileName), []byte(`
sources:
  main:
    kind: duckdb
    path: shared.duckdb
offline_store:
  kind: duckdb
  path: ./shared.duckdb
  table: log
`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	logOne(t, env)
	main, _ := env.Source("main")
	if n := count(t, main, "SELECT count(*) FROM log WHERE entity_key = '7' AND feature = 'user.name' AND (value->>'$') = 'ada'"); n != 1 {
		t.Errorf("%d logged rows in the source's database, want 1", n)
	}
	if env, err := Open(Default()); err != nil || env.OfflineLog() != nil {
		t.Errorf("the embedded default has an offline log (%v)", err)
	} else {
		env.Close()
	}
}

func TestOpenOfflinePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	t.Setenv("FLETCH_TEST_PG_DSN", dsn)
	cfg, err := Parse("conf/fletch.yaml", []byte("offline_store:\n  kind: postgres\n  dsn: ${FLETCH_TEST_PG_DSN}\n"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logOne(t, env)
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SELECT value #>> '{}' FROM fletch_feature_log WHERE entity_key = '7' AND feature = 'user.name'").Scan(&got); err != nil || got != "ada" {
		t.Errorf("logged %q (%v), want ada", got, err)
	}

	cfg, err = Parse("conf/fletch.yaml", []byte("offline_store:\n  kind: postgres\n  dsn: postgres://fletch@127.0.0.1:1/db?connect_timeout=2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = Open(cfg); err == nil || !strings.HasPrefix(err.Error(), "conf/fletch.yaml:2: offline store: creating table") {
		t.Errorf("err = %v", err)
	}
}
