package config

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/pgonline"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

func TestParse(t *testing.T) {
	t.Setenv("FLETCH_TEST_PW", "s3cret")
	t.Setenv("FLETCH_TEST_PORT", "9000")
	cfg, err := Parse("/repo/fletch.yaml", []byte(`
sources:
  marketplace:
    kind: duckdb
    path: data/market.duckdb
  scratch:
    kind: duckdb
  warehouse:
    kind: postgres
    dsn: postgres://app:${FLETCH_TEST_PW}@db:5432/shop
    max_conns: 8
    statement_timeout: 2s
online_store:
  kind: memory
server:
  listen: 0.0.0.0:${FLETCH_TEST_PORT}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SourceConfig{
		"marketplace": {Name: "marketplace", Kind: "duckdb", Path: "/repo/data/market.duckdb", Line: 3},
		"scratch":     {Name: "scratch", Kind: "duckdb", Line: 6},
		"warehouse": {Name: "warehouse", Kind: "postgres", DSN: "postgres://app:s3cret@db:5432/shop",
			MaxConns: 8, StatementTimeout: 2 * time.Second, Line: 8},
	}
	if len(cfg.Sources) != len(want) {
		t.Fatalf("sources = %+v", cfg.Sources)
	}
	for name, w := range want {
		if got := cfg.Sources[name]; got != w {
			t.Errorf("source %s = %+v, want %+v", name, got, w)
		}
	}
	if cfg.Embedded || cfg.OnlineStore.Kind != "memory" || cfg.Server.Listen != "0.0.0.0:9000" || cfg.Path != "/repo/fletch.yaml" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestParsePlanCache(t *testing.T) {
	for _, c := range []struct {
		text    string
		entries int
		bytes   int64
	}{
		{"max_entries: 500\n    max_bytes: 64MiB", 500, 64 << 20},
		{"max_bytes: 500MB", 0, 500_000_000},
		{"max_bytes: 1048576", 0, 1 << 20},
		{"max_bytes: 2 GiB", 0, 2 << 30},
	} {
		cfg, err := Parse("f.yaml", []byte("server:\n  plan_cache:\n    "+c.text+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		if cfg.Server.PlanCacheEntries != c.entries || cfg.Server.PlanCacheBytes != c.bytes {
			t.Errorf("%s: entries %d bytes %d, want %d %d", c.text, cfg.Server.PlanCacheEntries, cfg.Server.PlanCacheBytes, c.entries, c.bytes)
		}
	}
}

func TestParseServerHTTPAndLog(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte("server:\n  http:\n    listen: 127.0.0.1:9464\n  log:\n    format: json\n    level: debug\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Server; s.HTTPListen != "127.0.0.1:9464" || s.LogFormat != "json" || s.LogLevel != "debug" {
		t.Errorf("server = %+v", s)
	}
}

func TestParseTracingAndLimits(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte("server:\n  tracing:\n    otlp_endpoint: https://otel.internal:4318\n    protocol: http\n    sample_ratio: 0.01\n    service_name: shop-features\n"+
		"  limits:\n    max_expression_depth: 64\n    max_expression_nodes: 1000\n    max_query_memory: 256MiB\n    max_tile_memory: 1GiB\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := cfg.Server.Tracing
	if tr.Endpoint != "https://otel.internal:4318" || tr.Protocol != "http" || tr.SampleRatio == nil || *tr.SampleRatio != 0.01 || tr.ServiceName != "shop-features" {
		t.Errorf("tracing = %+v", tr)
	}
	if l := cfg.Server.Limits; l.MaxExpressionDepth != 64 || l.MaxExpressionNodes != 1000 || l.MaxQueryMemory != 256<<20 || l.MaxTileMemory == nil || *l.MaxTileMemory != 1<<30 {
		t.Errorf("limits = %+v", l)
	}
}

func TestParsePython(t *testing.T) {
	for _, c := range []struct {
		text string
		want PythonConfig
	}{
		{"executable: python3.12\n  workers: 4\n  timeout: 2s\n  queue: 10", PythonConfig{Executable: "python3.12", Workers: 4, Timeout: 2 * time.Second, Queue: 10}},
		{"executable: .venv/bin/python", PythonConfig{Executable: "/repo/.venv/bin/python"}},
		{"executable: /usr/bin/python3", PythonConfig{Executable: "/usr/bin/python3"}},
	} {
		cfg, err := Parse("/repo/fletch.yaml", []byte("python:\n  "+c.text+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		if cfg.Python != c.want {
			t.Errorf("%s: %+v, want %+v", c.text, cfg.Python, c.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "server:\n  listen: :1\n"} {
		cfg, err := Parse("f.yaml", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !cfg.Embedded || cfg.OnlineStore.Kind != "memory" {
			t.Errorf("%q: %+v, want the embedded default sources and memory store", text, cfg)
		}
		if text == "" && cfg.Server.Listen != DefaultListen {
			t.Errorf("listen = %q", cfg.Server.Listen)
		}
	}
}

func TestParseErrors(t *testing.T) {
	os.Unsetenv("FLETCH_TEST_UNSET")
	cases := []struct{ name, text, want string }{
		{"unknown top-level key", "sources: {}\nonline_stor:\n  kind: memory\n",
			`f.yaml:2:1: unknown key "online_stor" in fletch.yaml (did you mean "online_store"?)`},
		{"unknown source key", "sources:\n  main:\n    kind: duckdb\n    pth: x.db\n",
			`f.yaml:4:5: unknown key "pth" in sources.main (did you mean "path"?)`},
		{"unknown source kind", "sources:\n  main:\n    kind: duckbd\n", `f.yaml:3:11: unknown kind "duckbd" (did you mean "duckdb"?)`},
		{"unknown store kind", "online_store:\n  kind: redsi\n", `f.yaml:2:9: unknown kind "redsi" (did you mean "redis"?)`},
		{"store without kind", "online_store:\n  addr: x:1\n", `f.yaml:2:3: online_store has no kind`},
		{"redis without addr", "online_store:\n  kind: redis\n", `f.yaml:2:3: the redis online store has no addr`},
		{"redis with addr and addrs", "online_store:\n  kind: redis\n  addr: a:1\n  addrs: [b:1]\n", `f.yaml:3:9: give the redis online store addr`},
		{"dynamodb key on redis", "online_store:\n  kind: redis\n  addr: a:1\n  table: t\n", `f.yaml:4:10: table is a key of dynamodb and postgres online stores, not of redis ones`},
		{"dynamodb without table", "online_store:\n  kind: dynamodb\n", `the dynamodb online store has no table`},
		{"postgres without dsn", "online_store:\n  kind: postgres\n  table: t\n", `f.yaml:2:3: the postgres online store has no dsn`},
		{"redis key on postgres", "online_store:\n  kind: postgres\n  dsn: x\n  prefix: p\n", `f.yaml:4:11: prefix is a key of redis online stores, not of postgres ones`},
		{"postgres key on dynamodb", "online_store:\n  kind: dynamodb\n  table: t\n  dsn: x\n", `f.yaml:4:8: dsn is a key of postgres online stores, not of dynamodb ones`},
		{"bad bool", "online_store:\n  kind: dynamodb\n  table: t\n  create_table: maybe\n", `f.yaml:4:17: want true or false, not "maybe"`},
		{"typo in a store key", "online_store:\n  kind: redis\n  adr: a:1\n", `unknown key "adr" in online_store (did you mean "addr"?)`},
		{"unset variable in a dsn", "sources:\n  pg:\n    kind: postgres\n    dsn: postgres://u:${FLETCH_TEST_UNSET}@h/db\n", `f.yaml:4:10: environment variable FLETCH_TEST_UNSET is not set`},
		{"no kind", "sources:\n  main:\n    path: x.db\n", `f.yaml:2:3: source "main" has no kind`},
		{"postgres without dsn", "sources:\n  pg:\n    kind: postgres\n", `f.yaml:2:3: postgres source "pg" has no dsn`},
		{"duckdb with dsn", "sources:\n  d:\n    kind: duckdb\n    dsn: x\n", `source "d" is a duckdb source`},
		{"unset variable", "server:\n  listen: ${FLETCH_TEST_UNSET}:1\n", `f.yaml:2:11: environment variable FLETCH_TEST_UNSET is not set`},
		{"bad duration", "sources:\n  pg:\n    kind: postgres\n    dsn: x\n    statement_timeout: soon\n", `f.yaml:5:24: want a duration`},
		{"bad integer", "sources:\n  pg:\n    kind: postgres\n    dsn: x\n    max_conns: many\n", `f.yaml:5:16: want a whole number`},
		{"duplicate key", "server:\n  listen: a\n  listen: b\n", `key "listen" appears twice`},
		{"not a mapping", "sources:\n  - main\n", `f.yaml:2:3: sources must be a mapping`},
		{"list value", "server:\n  listen: [a]\n", `f.yaml:2:11: want a single value here`},
		{"bad yaml", "server: [\n", `f.yaml: yaml:`},
		{"bad size", "server:\n  plan_cache:\n    max_bytes: lots\n", `f.yaml:3:16: want a size such as 64MiB`},
		{"typo in plan_cache", "server:\n  plan_cache:\n    max_entry: 5\n", `unknown key "max_entry" in server.plan_cache (did you mean "max_entries"?)`},
		{"log format", "server:\n  log:\n    format: jsn\n", `f.yaml:3:13: unknown format "jsn" (did you mean "json"?) (known formats: "text", "json")`},
		{"log level", "server:\n  log:\n    level: verbose\n", `unknown level "verbose"`},
		{"http key", "server:\n  http:\n    addr: :1\n", `unknown key "addr" in server.http`},
		{"typo in tracing", "server:\n  tracing:\n    otlp_endpoint: http://a:4317\n    sample_rate: 0.1\n", `f.yaml:4:5: unknown key "sample_rate" in server.tracing (did you mean "sample_ratio"?)`},
		{"tracing without endpoint", "server:\n  tracing:\n    protocol: grpc\n", `f.yaml:3:5: server.tracing has no otlp_endpoint`},
		{"tracing endpoint without scheme", "server:\n  tracing:\n    otlp_endpoint: a:4317\n", `f.yaml:3:20: want a URL such as http://127.0.0.1:4317`},
		{"tracing protocol", "server:\n  tracing:\n    otlp_endpoint: http://a:4317\n    protocol: grcp\n", `f.yaml:4:15: unknown protocol "grcp" (did you mean "grpc"?)`},
		{"tracing ratio", "server:\n  tracing:\n    otlp_endpoint: http://a:4317\n    sample_ratio: 2\n", `f.yaml:4:19: want a fraction between 0 and 1`},
		{"expression depth too deep", "server:\n  limits:\n    max_expression_depth: 100000\n", `f.yaml:3:27: want at most 4096 (the front ends read no deeper), not 100000`},
		{"typo in limits", "server:\n  limits:\n    max_query_mem: 1MiB\n", `unknown key "max_query_mem" in server.limits (did you mean "max_query_memory"?)`},
		{"typo in python", "python:\n  worker: 4\n", `f.yaml:2:3: unknown key "worker" in python (did you mean "workers"?)`},
		{"bad python timeout", "python:\n  timeout: 10\n", `f.yaml:2:12: want a duration such as 5s or 250ms, not "10"`},
		{"bad default schedule", "tiles:\n  backfill_schedule: bogus cron\n", `f.yaml:2:22: tiles.backfill_schedule "bogus cron" is not a cron schedule`},
		{"bad feature schedule", "tiles:\n  schedules:\n    user.total: 61 * * * *\n", `f.yaml:3:17: tiles.schedules.user.total "61 * * * *" is not a cron schedule`},
		{"schedules not a mapping", "tiles:\n  schedules: [user.total]\n", `f.yaml:2:14: tiles.schedules must map feature names`},
		{"typo in tiles", "tiles:\n  backfill_scedule: '@daily'\n", `f.yaml:2:3: unknown key "backfill_scedule" in tiles (did you mean "backfill_schedule"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestTileSchedules: which cron a materialized feature's backfill runs on
// inside fletch serve, and the names tiles.schedules may use.
func TestTileSchedules(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte("tiles:\n  backfill_schedule: '@daily'\n  schedules:\n    user.total: '0 * * * *'\n    user.totl: '@hourly'\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ feature, defined, want string }{
		{"user.total", "0 0 * * *", "0 * * * *"}, // fletch.yaml's entry over the definition's
		{"user.cnt", "0 0 * * *", "0 0 * * *"},   // the definition's over the default
		{"user.cnt", "", "@daily"},               // the default
	} {
		if got := cfg.ScheduleOf(c.feature, c.defined); got != c.want {
			t.Errorf("ScheduleOf(%s, %q) = %q, want %q", c.feature, c.defined, got, c.want)
		}
	}
	if got := (&Config{}).ScheduleOf("user.cnt", ""); got != "" {
		t.Errorf("without tiles: and a definition's schedule: %q, want none", got)
	}
	err = cfg.CheckSchedules([]string{"user.total", "user.cnt"})
	if want := `f.yaml:5:5: tiles.schedules names "user.totl", which is not a materialized windowed feature of the repository (did you mean "user.total"?)`; err == nil || err.Error() != want {
		t.Errorf("CheckSchedules: %v, want %s", err, want)
	}
}

func TestFind(t *testing.T) {
	repo := t.TempDir()
	cfg, err := Find(repo, "")
	if err != nil || !cfg.Embedded || cfg.Path != "" {
		t.Fatalf("no file: %+v, %v; want the embedded default", cfg, err)
	}
	os.WriteFile(filepath.Join(repo, FileName), []byte("server:\n  listen: repo:1\n"), 0o644)
	other := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(other, []byte("server:\n  listen: explicit:1\n"), 0o644)
	if cfg, err := Find(repo, ""); err != nil || cfg.Server.Listen != "repo:1" {
		t.Errorf("repo file: %+v, %v", cfg, err)
	}
	if cfg, err := Find(repo, other); err != nil || cfg.Server.Listen != "explicit:1" {
		t.Errorf("explicit file: %+v, %v", cfg, err)
	}
	if _, err := Find(repo, filepath.Join(repo, "missing.yaml")); err == nil {
		t.Error("a missing explicit file: no error")
	}
}

// count runs a count query through the source's Fetch.
func count(t *testing.T, src stores.Source, query string) int64 {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: query})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	return rec.Column(0).(*array.Int64).Value(0)
}

func TestOpenEmbedded(t *testing.T) {
	cfg := Default()
	cfg.EmbeddedPath = filepath.Join(t.TempDir(), "fletch.duckdb")
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	db, err := env.DuckDB("marketplace")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB().Exec("CREATE TABLE t AS SELECT * FROM range(3)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"marketplace", "postgres", "anything"} {
		src, err := env.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, src, "SELECT count(*) FROM t"); n != 3 {
			t.Errorf("source %s: %d rows, want the embedded database's 3", name, n)
		}
	}
	if env.OnlineStore() == nil {
		t.Error("no online store")
	}
}

func TestOpenConfigured(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, FileName), []byte(`
sources:
  main:
    kind: duckdb
    path: shared.duckdb
  alias:
    kind: duckdb
    path: ./shared.duckdb
  scratch:
    kind: duckdb
    path: ":memory:"
`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	main, _ := env.DuckDB("main")
	if _, err := main.DB().Exec("CREATE TABLE t AS SELECT * FROM range(5)"); err != nil {
		t.Fatal(err)
	}
	alias, err := env.Source("alias")
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, alias, "SELECT count(*) FROM t"); n != 5 {
		t.Errorf("alias of the same file: %d rows, want 5", n)
	}
	scratch, _ := env.Source("scratch")
	if n := count(t, scratch, "SELECT count(*) FROM duckdb_tables()"); n != 0 {
		t.Errorf("scratch is not its own database: %d tables", n)
	}
	if _, err := env.Source("mian"); err == nil || !strings.Contains(err.Error(), `no source named "mian"`) || !strings.Contains(err.Error(), `did you mean "main"?`) {
		t.Errorf("unknown source: err = %v", err)
	}
	if failed := env.Ready(context.Background()); len(failed) != 0 {
		t.Errorf("Ready = %v, want nothing failing", failed)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed, the databases no longer answer: each source is named once
	// (main and alias share one).
	failed := env.Ready(context.Background())
	if len(failed) != 2 || failed["source scratch"] == nil || (failed["source main"] == nil) == (failed["source alias"] == nil) {
		t.Errorf("Ready after Close = %v, want scratch and one of main, alias", failed)
	}
	if _, err := os.Stat(filepath.Join(dir, "shared.duckdb")); err != nil {
		t.Errorf("the relative path was not resolved against the file's folder: %v", err)
	}
}

func TestOpenPostgres(t *testing.T) {
	t.Setenv("FLETCH_TEST_PG_DSN", pgtest.DSN(t))
	cfg, err := Parse("conf/fletch.yaml", []byte(`
sources:
  local:
    kind: duckdb
  warehouse:
    kind: postgres
    dsn: ${FLETCH_TEST_PG_DSN}
    max_conns: 2
    statement_timeout: 1s
`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	src, err := env.Source("warehouse")
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, src, "SELECT count(*) FROM generate_series(1, 7)"); n != 7 {
		t.Errorf("count = %d, want 7", n)
	}
	// statement_timeout reached the server.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT current_setting('statement_timeout') AS t"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := rec.Column(0).(*array.String).Value(0); got != "1s" {
		t.Errorf("statement_timeout = %q, want 1s", got)
	}

	// A server that does not answer: an error at the source's line.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg, err = Parse("conf/fletch.yaml", []byte(fmt.Sprintf("sources:\n  a:\n    kind: duckdb\n  pg:\n    kind: postgres\n    dsn: postgres://fletch@127.0.0.1:%d/db\n", port)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(cfg)
	if err == nil || !strings.HasPrefix(err.Error(), `conf/fletch.yaml:4: postgres source pg: cannot connect`) {
		t.Errorf("err = %v", err)
	}
}

// /readyz (Env.Ready) reflects the PostgreSQL online store: ready while
// its server answers, "online_store" with the table and server named while
// it does not, ready again once it is back.
func TestReadyPostgresOnlineStore(t *testing.T) {
	proxy, dsn := pgtest.StartProxy(t, pgtest.DSN(t))
	t.Setenv("FLETCH_TEST_PG_DSN", dsn)
	cfg, err := Parse("conf/fletch.yaml", []byte("online_store:\n  kind: postgres\n  dsn: ${FLETCH_TEST_PG_DSN}\n  table: cache_ready\n"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	if failed := env.Ready(ctx); len(failed) != 0 {
		t.Errorf("server up: Ready = %v, want nothing failing", failed)
	}
	proxy.Stop()
	failed := env.Ready(ctx)
	if err := failed["online_store"]; len(failed) != 1 || err == nil || !strings.Contains(err.Error(), "table cache_ready at 127.0.0.1:") {
		t.Errorf("server down: Ready = %v, want online_store naming the table and server", failed)
	}
	proxy.Start(t)
	if failed := env.Ready(ctx); len(failed) != 0 {
		t.Errorf("server back: Ready = %v, want nothing failing", failed)
	}
}

func TestParseOnlineStores(t *testing.T) {
	t.Setenv("FLETCH_TEST_REDIS_PW", "pw")
	cases := []struct {
		text string
		want OnlineStoreConfig
	}{
		{"online_store:\n  kind: memory\n", OnlineStoreConfig{Kind: "memory", Line: 2}},
		{"online_store:\n  kind: redis\n  addr: localhost:6379\n  password: ${FLETCH_TEST_REDIS_PW}\n  db: 2\n  prefix: \"shop:\"\n  pool_size: 32\n",
			OnlineStoreConfig{Kind: "redis", Addrs: []string{"localhost:6379"}, Password: "pw", DB: 2, Prefix: "shop:", PoolSize: 32, Line: 2}},
		{"online_store:\n  kind: redis\n  addrs: [a:7000, b:7001]\n",
			OnlineStoreConfig{Kind: "redis", Addrs: []string{"a:7000", "b:7001"}, Line: 2}},
		{"online_store:\n  kind: dynamodb\n  table: features\n  region: eu-west-1\n  endpoint: http://127.0.0.1:8000\n  create_table: true\n",
			OnlineStoreConfig{Kind: "dynamodb", Table: "features", Region: "eu-west-1", Endpoint: "http://127.0.0.1:8000", CreateTable: true, Line: 2}},
		{"online_store:\n  kind: postgres\n  dsn: postgres://app:${FLETCH_TEST_REDIS_PW}@db/shop\n  table: cache.online\n  pool_size: 8\n",
			OnlineStoreConfig{Kind: "postgres", DSN: "postgres://app:pw@db/shop", Table: "cache.online", PoolSize: 8, Line: 2}},
	}
	for _, c := range cases {
		cfg, err := Parse("f.yaml", []byte(c.text))
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if !reflect.DeepEqual(cfg.OnlineStore, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.text, cfg.OnlineStore, c.want)
		}
	}
}

// `online_store: {kind: postgres}` opens the PostgreSQL online store, which
// creates its table; an unreachable server is an error at the section's
// line.
func TestOpenPostgresOnlineStore(t *testing.T) {
	dsn := pgtest.DSN(t)
	t.Setenv("FLETCH_TEST_PG_DSN", dsn)
	cfg, err := Parse("conf/fletch.yaml", []byte("online_store:\n  kind: postgres\n  dsn: ${FLETCH_TEST_PG_DSN}\n  table: cache_x\n"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if _, ok := env.OnlineStore().(*pgonline.Store); !ok {
		t.Fatalf("online store %T, want the postgres one", env.OnlineStore())
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM cache_x").Scan(&n); err != nil || n != 0 {
		t.Errorf("table cache_x: %d rows, %v", n, err)
	}
	cfg, err = Parse("conf/fletch.yaml", []byte("online_store:\n  kind: postgres\n  dsn: postgres://fletch@127.0.0.1:1/db?connect_timeout=2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = Open(cfg); err == nil || !strings.HasPrefix(err.Error(), "conf/fletch.yaml:2: online store: postgres online store: cannot connect") {
		t.Errorf("err = %v", err)
	}
}
