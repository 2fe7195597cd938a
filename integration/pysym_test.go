package integration

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/operators/pyworker/pyworkertest"
)

// trapsPy are resolvers full of Python's traps (floor division and modulo
// of negatives, int() of floats, banker's rounding, str methods, format
// specs, chained conditional expressions, a ZeroDivisionError for some
// rows) that fletch compiles to expressions: no Python runs in the server.
const trapsPy = `from chalk import online
from chalk.features import Features
from marketplace import Item, Review


@online
def price_traps(price: Item.price, title: Item.title) -> Features[Item.price_code, Item.price_round, Item.title_code]:
    cents = int(price * 100)
    code = (cents // -7) * 10 + cents % -7
    rounded = round(price / 3, 1) + round(price)
    words = title.lower().replace(" ", "-")
    tag = "cheap" if price < 20 else "mid" if price < 100 else "dear"
    return code, rounded, f"{tag}:{words}:{price:,.2f}:{len(title)}"


@online
def rating_ratio(stars: Review.star_rating, headline: Review.review_headline) -> Review.rating_ratio:
    return (len(headline or "") % 5) / (stars - 3) if stars else 0.0
`

// trapsRepo is a copy of the demo's repository with trapsPy and the
// features it outputs, over data generated here; no Python is configured.
func trapsRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	repo := filepath.Join(dir, "marketplace")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), repo)
	src, err := os.ReadFile(filepath.Join(repo, "marketplace.py"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for _, r := range [][2]string{
		{"    price: float\n", "    price: float\n    price_code: int | None\n    price_round: float | None\n    title_code: str | None\n"},
		{"    is_positive: bool", "    rating_ratio: float | None\n    is_positive: bool"},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("marketplace.py no longer has %q", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	for name, body := range map[string]string{"marketplace.py": text, "traps.py": trapsPy} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, dbPath)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %s\npython:\n  executable: /no/such/python3\n", strconv.Quote(dbPath))
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// Compiled Python resolvers through Flight SQL answer exactly what CPython
// answers for the same rows — an IN list and a prepared batch — with no
// Python available to the server; a row CPython raises for is the query's
// InvalidArgument error naming the resolver, feature, row and exception.
func TestCompiledPythonFlightSQL(t *testing.T) {
	python := pyworkertest.Python(t)
	repo := trapsRepo(t)
	if out, _, err := fletch(t, "plan", "--repo", repo, "--in", "item.id=1", "--out", "price_code"); err != nil ||
		!strings.Contains(out, "<- python price_traps as an expression") {
		t.Fatalf("fletch plan: %v\n%s", err, out)
	}
	addr, _ := startServe(t, repo)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, addr, mem)
	ctx := context.Background()

	items := referenceRows(t, `SELECT id, list_price, title FROM marketplace_items ORDER BY id LIMIT 60`)
	var ids []string
	for _, r := range items {
		ids = append(ids, "'"+r[0].(string)+"'")
	}
	want := cpythonRows(t, python, `import json, sys
out = []
for id, price, title in json.load(sys.stdin):
    cents = int(price * 100)
    code = (cents // -7) * 10 + cents % -7
    rounded = round(price / 3, 1) + round(price)
    words = title.lower().replace(" ", "-")
    tag = "cheap" if price < 20 else "mid" if price < 100 else "dear"
    out.append([id, code, repr(rounded), f"{tag}:{words}:{price:,.2f}:{len(title)}"])
print(json.dumps(out))`, items)
	info, err := cl.Execute(ctx, `SELECT id, price_code, price_round, title_code FROM item WHERE id IN (`+strings.Join(ids, ", ")+`) ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	_, got := fetch(t, ctx, cl, info)
	if len(got) != len(want) {
		t.Fatalf("%d rows, CPython %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i].([]any)
		if fmt.Sprint(g[0], " ", g[1]) != fmt.Sprint(w[0], " ", w[1]) || strconv.FormatFloat(g[2].(float64), 'g', -1, 64) != pyRepr(w[2].(string)) || g[3] != w[3] {
			t.Errorf("row %d: %v, CPython %v", i, g, w)
		}
	}

	// A prepared batch of reviews: rows whose rating is not 3 agree with
	// CPython; a batch holding a 3-star review fails with the row's error.
	reviews := referenceRows(t, `SELECT id, star_rating, review_headline FROM marketplace_reviews ORDER BY id LIMIT 300`)
	var good, bad []any
	var goodRows [][]any
	for _, r := range reviews {
		if r[1].(int32) == 3 {
			bad = append(bad, r[0])
		} else if len(good) < 100 {
			good = append(good, r[0])
			goodRows = append(goodRows, []any{r[1], r[2]})
		}
	}
	if len(bad) == 0 || len(good) < 50 {
		t.Fatalf("the data has %d 3-star reviews and %d others", len(bad), len(good))
	}
	ratios := cpythonRows(t, python, `import json, sys
print(json.dumps([repr((len(h or "") % 5) / (s - 3) if s else 0.0) for s, h in json.load(sys.stdin)]))`, goodRows)
	stmt, err := cl.Prepare(ctx, `SELECT id, rating_ratio FROM review WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	run := func(ids []any) ([][]any, error) {
		p := params(t, mem, stmt.ParameterSchema(), map[string][]any{"id": ids})
		stmt.SetParameters(p)
		p.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			return nil, err
		}
		_, rows, err := readAll(ctx, cl, info)
		return rows, err
	}
	rows, err := run(good)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if g := strconv.FormatFloat(r[1].(float64), 'g', -1, 64); g != pyRepr(ratios[i].(string)) {
			t.Errorf("review %v: rating_ratio %s, CPython %s", r[0], g, ratios[i])
		}
	}
	_, err = run([]any{good[0], bad[0], good[1]})
	line := strings.Count(trapsPy[:strings.Index(trapsPy, "return (len(headline")], "\n") + 1
	wantMsg := fmt.Sprintf("Python resolver rating_ratio raised for review.rating_ratio in 1 of 3 rows; the first, row 1: ZeroDivisionError: division by zero (rating_ratio, line %d)", line)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), wantMsg) || strings.Contains(err.Error(), repo) {
		t.Errorf("a 3-star review: %v\nwant InvalidArgument: %s", err, wantMsg)
	}
}

// pyRepr turns CPython's repr of a float into Go's shortest formatting.
func pyRepr(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return s
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
