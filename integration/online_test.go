package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// requireService returns the address the test services script exported in
// env, skipping the test without it (failing it in CI, which must never
// skip silently).
func requireService(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: scripts/test starts the test services and sets it", env)
		}
		t.Skipf("%s is not set (scripts/test starts the test services)", env)
	}
	return v
}

// TestPostgresWithOnlineStores serves the marketplace from Postgres with
// Redis, then DynamoDB Local, then Postgres (a table in the test's schema,
// reached without the proxy) as the online store: a feature with
// max_staleness is computed from Postgres once, then served from the store
// (the Hit? column says so) — so well that it is still answered while
// Postgres is unreachable, when a feature that needs Postgres fails and
// succeeds again once Postgres is back.
func TestPostgresWithOnlineStores(t *testing.T) {
	stores := []struct{ name, env, yaml string }{
		{"redis", "FLETCH_TEST_REDIS", "online_store:\n  kind: redis\n  addr: ${FLETCH_TEST_REDIS}\n  prefix: \"%s:\"\n"},
		{"dynamodb", "FLETCH_TEST_DYNAMODB", "online_store:\n  kind: dynamodb\n  endpoint: ${FLETCH_TEST_DYNAMODB}\n  region: us-east-1\n  table: %s\n  create_table: true\n"},
		{"postgres", "FLETCH_TEST_POSTGRES", "online_store:\n  kind: postgres\n  dsn: ${FLETCH_IT_ONLINE_DSN}\n  table: %s\n"},
	}
	want := strconv.Quote(referenceRows(t, `SELECT genre FROM marketplace_items WHERE id = '137'`)[0][0].(string))
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			requireService(t, store.env)
			direct := marketplaceInPostgres(t)
			proxy, proxied := pgtest.StartProxy(t, direct)
			dir := filepath.Join(workDir, "online-"+store.name)
			copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
			yaml := "sources:\n  marketplace:\n    kind: postgres\n    dsn: ${FLETCH_IT_MARKETPLACE_DSN}\n" +
				fmt.Sprintf(store.yaml, fmt.Sprintf("fletch_it_%d", time.Now().UnixNano()))
			if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			env := []string{"FLETCH_IT_MARKETPLACE_DSN=" + proxied}
			if store.name == "postgres" {
				env = append(env, "FLETCH_IT_ONLINE_DSN="+direct) // the test's schema, not through the proxy
			}
			addr, _ := startServe(t, dir, env...)

			query := func(outs ...string) (map[string]string, map[string]bool, error) {
				args := []string{"query", "--server", addr, "--in", "item.id=137"}
				for _, o := range outs {
					args = append(args, "--out", o)
				}
				out, stderr, err := fletch(t, args...)
				if err != nil {
					return nil, nil, fmt.Errorf("%v: %s", err, stderr)
				}
				cells, hits := resultTableHits(t, out)
				if _, asked := cells["item.genre_from_llm"]; (asked || outs[0] == "item.genre_from_llm") && cells["item.genre_from_llm"] != want {
					t.Fatalf("genre %s, want %s:\n%s", cells["item.genre_from_llm"], want, out)
				}
				return cells, hits, nil
			}
			_, hits, err := query("item.genre_from_llm", "item.title")
			if err != nil {
				t.Fatal(err)
			}
			if hits["item.genre_from_llm"] || hits["item.title"] {
				t.Fatalf("the first query was served from the store: %v", hits)
			}
			// The write-back is asynchronous: the value reaches the store shortly.
			for i := 0; !hits["item.genre_from_llm"]; i++ {
				if i == 100 {
					t.Fatal("item.genre_from_llm (max_staleness=infinity) was never served from the online store")
				}
				time.Sleep(100 * time.Millisecond)
				if _, hits, err = query("item.genre_from_llm", "item.title"); err != nil {
					t.Fatal(err)
				}
			}

			proxy.Stop()
			if _, hits, err := query("item.genre_from_llm"); err != nil || !hits["item.genre_from_llm"] {
				t.Fatalf("with Postgres unreachable, the cached feature: hits %v, %v", hits, err)
			}
			if _, _, err := query("item.title"); err == nil || !strings.Contains(err.Error(), "items") {
				t.Fatalf("with Postgres unreachable, item.title: %v, want an error naming the items resolver", err)
			}
			proxy.Start(t)
			for i := 0; ; i++ {
				_, _, err := query("item.title")
				if err == nil {
					break
				}
				if i == 100 {
					t.Fatalf("after Postgres came back: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
