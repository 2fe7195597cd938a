package integration

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestServedValidations: a repository whose reviews break their bounds,
// served. star_rating (min=1, max=5) answers 9 and 0 as they are and
// `fletch features --server` counts them (they were served unchanged and
// uncounted), and so do its metrics; headline (max_length=5, strict=True)
// fails the query naming the feature.
func TestServedValidations(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "shop")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "shop.duckdb")
	httpAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE reviews AS SELECT * FROM (VALUES (1, 9, 'ok'), (2, 0, 'far too long'), (3, 4, 'fine')) t(id, star_rating, headline)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for name, body := range map[string]string{
		"shop.py": `from chalk.features import features, feature

@features
class Review:
    id: int
    star_rating: int = feature(min=1, max=5)
    headline: str = feature(max_length=5, strict=True)
`,
		"reviews.sql": "-- resolves: Review\n-- source: db\nselect id, star_rating, headline from reviews\n",
		"fletch.yaml": fmt.Sprintf("sources:\n  db:\n    kind: duckdb\n    path: %s\nserver:\n  http:\n    listen: %s\n", strconv.Quote(dbPath), httpAddr),
	} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr, _ := startServe(t, repo)
	for _, id := range []string{"1", "2", "3"} {
		out, stderr, err := fletch(t, "query", "--server", addr, "--in", "review.id="+id, "--out", "star_rating")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if got, want := resultTable(t, out)["review.star_rating"], map[string]string{"1": "9", "2": "0", "3": "4"}[id]; got != want {
			t.Errorf("review %s: star_rating %s, want %s as stored", id, got, want)
		}
	}
	_, stderr, err := fletch(t, "query", "--server", addr, "--in", "review.id=2", "--out", "headline")
	if err == nil || !strings.Contains(stderr, `review.headline: "far too long" (row 0) outside max_length=5 (strict)`) {
		t.Errorf("a strict violation: %v\n%s", err, stderr)
	}
	out, stderr, err := fletch(t, "features", "--repo", repo, "--server", addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"review.star_rating min=1, max=5 served 2", "review.headline max_length=5 strict 1"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("fletch features --server:\n%s\nwant a line %q", out, want)
		}
	}
	// The same counts in the operators' metrics.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`fletch_validation_violations_total{bounds="min=1, max=5",feature="review.star_rating",strict="false"} 2`,
		`fletch_validation_violations_total{bounds="max_length=5",feature="review.headline",strict="true"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
