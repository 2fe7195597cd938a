package integration

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fletch-engine/fletch/auth"
)

// chromium finds the browser the console tests drive: $FLETCH_CHROMIUM,
// else Debian's chromium (scripts/test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("FLETCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: the console's browser tests need it (scripts/test installs Debian's chromium package; or set FLETCH_CHROMIUM)")
	return ""
}

// TestConsoleBrowser drives the web console in headless Chromium against
// `fletch serve` of the marketplace with auth: one browser, a tab per
// token. The expected values come from the tutorial's definitions and
// from DuckDB SQL over the same generated data, never from the console.
func TestConsoleBrowser(t *testing.T) {
	browser := chromium(t)
	dir := filepath.Join(workDir, "console")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	generateDuckDB(t, filepath.Join(dir, "market.duckdb"))
	tokens := map[string]string{}
	yaml := "sources:\n  marketplace:\n    kind: duckdb\n    path: market.duckdb\nauth:\n  tokens:\n"
	for _, tok := range []struct{ name, scopes string }{{"all", "read:*"}, {"analyst", "read:user"}} {
		token, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[tok.name] = token
		yaml += fmt.Sprintf("    - name: %s\n      hash: %s\n      scopes: [%s]\n", tok.name, auth.Hash(token), tok.scopes)
	}
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, []string{"--http-listen", httpAddr})
	base := "http://" + httpAddr + "/console/"

	// The API refuses a call without a token, and names no class.
	res, err := http.Get(base + "api/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the catalogue without a token: %s, want 401", res.Status)
	}

	// Traffic for the live page: the reference query over Flight SQL.
	db, err := sql.Open("flightsql", "flightsql://"+srv.addr+"?timeout=10s&token="+tokens["all"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		var fit sql.NullFloat64
		if err := db.QueryRow(`SELECT price_fit FROM user_item WHERE user_id = '50' AND item_id = '200'`).Scan(&fit); err != nil {
			t.Fatal(err)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	do := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(ctx context.Context, name string) {
		if d := os.Getenv("FLETCH_CONSOLE_SCREENSHOTS"); d != "" {
			if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(d, name+".png"), buf, 0o644)
			}
		}
	}
	login := func(ctx context.Context, token string) {
		t.Helper()
		do(ctx, "signing in",
			chromedp.Navigate(base),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.CSS(`#classgraph g.node`)),
		)
	}

	// 1. The catalogue draws the tutorial's classes and their relations.
	if err := chromedp.Do(bctx); err != nil { // the browser starts with the first action, outside any step's timeout
		t.Fatal(err)
	}
	login(bctx, tokens["all"])
	classes := evalJS[[]string](t, bctx, `[...document.querySelectorAll("#classgraph g.node")].map(g => g.dataset.class).sort()`)
	want := []string{"item", "item_price", "review", "seller", "user", "user_item"} // marketplace.py's @features classes
	if strings.Join(classes, ",") != strings.Join(want, ",") {
		t.Errorf("the class graph shows %v, want %v", classes, want)
	}
	edges := evalJS[[]string](t, bctx, `[...document.querySelectorAll("#classgraph path.edge")].map(p => p.dataset.from + ">" + p.dataset.to)`)
	for _, e := range []string{"user_item>user", "user_item>item", "item>seller", "user>review", "item>item_price"} {
		if !slices.Contains(edges, e) {
			t.Errorf("the class graph has no relation %s (it has %v)", e, edges)
		}
	}
	shot(bctx, "catalogue")

	// 2. Clicking user_item, then its price_fit, shows the lineage down
	// to the SQL resolvers it reads (price_fit reads item prices through
	// item and user: marketplace.py's UserItem).
	do(bctx, "lineage of user_item.price_fit",
		chromedp.Click(chromedp.CSS(`#classgraph g.node[data-class="user_item"] rect`)),
		chromedp.WaitVisible(chromedp.CSS(`#features tr[data-fqn="user_item.price_fit"] a`)),
		chromedp.Click(chromedp.CSS(`#features tr[data-fqn="user_item.price_fit"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#lineage g.lnode.root`)),
	)
	sqlResolvers := evalJS[[]string](t, bctx, `[...document.querySelectorAll('#lineage g.lnode[data-kind="sql resolver"] text:not(.small)')].map(t => t.textContent).sort()`)
	sources := evalJS[[]string](t, bctx, `[...document.querySelectorAll('#lineage g.lnode[data-kind="source"] text:not(.small)')].map(t => t.textContent)`)
	if strings.Join(sqlResolvers, ",") != "item_prices,items,users" {
		t.Errorf("price_fit's lineage reaches the SQL resolvers %v, want item_prices, items, users", sqlResolvers)
	}
	if strings.Join(sources, ",") != "marketplace" {
		t.Errorf("price_fit's lineage reaches the sources %v, want marketplace", sources)
	}
	shot(bctx, "lineage")

	// 3. A query of user_item for user 50 / item 200 shows the values
	// DuckDB computes over the same data, and a plan with timings.
	do(bctx, "the query page",
		chromedp.Navigate(base+"#/query"),
		chromedp.WaitVisible(chromedp.ID("q-run")),
		chromedp.SetValue(chromedp.ID("q-class"), "user_item"),
		chromedp.SendKeys(chromedp.ID("q-inputs"), "user_id=50\nitem_id=200"),
		chromedp.SendKeys(chromedp.ID("q-now"), anchor.Format(time.RFC3339)),
		chromedp.Click(chromedp.ID("q-run")),
		chromedp.WaitVisible(chromedp.CSS(`#plan g.frame`)),
	)
	shot(bctx, "query")
	cells := evalJS[map[string]string](t, bctx, `Object.fromEntries([...document.querySelectorAll("#result tr[data-col]")].map(tr => [tr.dataset.col, tr.querySelector(".val").textContent]))`)
	planStages := evalJS[[]string](t, bctx, `[...document.querySelectorAll("#plan text.stage")].map(t => t.textContent)`)
	planText := evalJS[string](t, bctx, `document.getElementById("plan-text").textContent`)
	ref := userItemPrices(t, "50", "200")
	for _, name := range []string{"price_diff", "price_diff_ratio", "price_fit"} {
		got, err := strconv.ParseFloat(cells[name], 64)
		if err != nil || !anyClose(got, ref[name]) {
			t.Errorf("the console's %s = %q, want one of %v (DuckDB)", name, cells[name], ref[name])
		}
	}
	if cells["id"] != "50-200" {
		t.Errorf("the console's id = %q, want 50-200", cells["id"])
	}
	timed := 0
	for _, s := range planStages {
		if strings.Contains(s, " ms, ") && strings.Contains(s, "rows") {
			timed++
		}
	}
	if timed == 0 || !strings.Contains(strings.Join(planStages, "\n"), "fetch item_prices") {
		t.Errorf("the plan's stages %q: want fetches of item_prices with times and rows", planStages)
	}
	if !strings.Contains(planText, "analyze: 1 rows in") {
		t.Errorf("the plan text has no EXPLAIN ANALYZE summary:\n%s", planText)
	}

	// 4. The live page plots the server's metrics and lists the slowest
	// queries with their trace ids.
	do(bctx, "the live page",
		chromedp.Navigate(base+"#/live"),
		chromedp.WaitVisible(chromedp.CSS(`svg[data-plot="rate"] path[data-line]`)),
		chromedp.WaitVisible(chromedp.ID("slow-table")),
	)
	shot(bctx, "live")
	if n := evalJS[int](t, bctx, `document.querySelectorAll("svg.series").length`); n != 5 {
		t.Errorf("the live page draws %d plots, want 5", n)
	}
	if traces := evalJS[[]string](t, bctx, `[...document.querySelectorAll("#slow-table td.mono")].map(td => td.textContent)`); len(traces) < 3 || traces[0] == "" {
		t.Errorf("the slowest queries' trace ids: %q, want the 3 Flight SQL queries'", traces)
	}

	// The plots count what /metrics counts: the 20 queries made while the
	// page is open, and nothing twice (the 3 before it opened are in
	// /metrics only).
	for range 20 {
		var fit sql.NullFloat64
		if err := db.QueryRow(`SELECT price_fit FROM user_item WHERE user_id = '50' AND item_id = '200'`).Scan(&fit); err != nil {
			t.Fatal(err)
		}
	}
	plotted := 0.0
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var live struct {
			Points []struct {
				Rate float64 `json:"rate"`
				DT   float64 `json:"dt_s"`
			} `json:"points"`
		}
		getJSON(t, base+"api/live", tokens["all"], &live)
		plotted = 0
		for _, p := range live.Points {
			plotted += p.Rate * p.DT
		}
		if plotted > 19.5 {
			break
		}
	}
	if math.Abs(plotted-20) > 1e-6 {
		t.Errorf("the live plots count %v queries, want the 20 made while the page was open", plotted)
	}
	if n := metricSum(t, "http://"+httpAddr+"/metrics", "fletch_queries_total{"); n != 23 {
		t.Errorf("/metrics counts %v queries, want 23", n)
	}

	// 5. A token scoped to user sees user only: in the graph, in lineage,
	// in queries and among the slowest queries (its own tab: the token is
	// kept per tab).
	tab, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil { // opens the tab, outside any step's timeout
		t.Fatal(err)
	}
	login(tab, tokens["analyst"])
	if classes := evalJS[[]string](t, tab, `[...document.querySelectorAll("#classgraph g.node")].map(g => g.dataset.class)`); strings.Join(classes, ",") != "user" {
		t.Errorf("the analyst's class graph shows %v, want user only", classes)
	}
	body := evalJS[string](t, tab, `document.body.innerText`)
	for _, hidden := range []string{"user_item", "item_price", "reviews", "purchases", "seller", "Review"} {
		if strings.Contains(body, hidden) {
			t.Errorf("the analyst's catalogue mentions %q:\n%s", hidden, body)
		}
	}
	do(tab, "the analyst's lineage",
		chromedp.Navigate(base+"#/lineage/user_item.price_fit"),
		chromedp.WaitVisible(chromedp.ID("page-error")),
	)
	if msg := evalJS[string](t, tab, `document.getElementById("page-error").textContent`); !strings.Contains(msg, `no feature "user_item.price_fit"`) {
		t.Errorf("the analyst's lineage of user_item.price_fit: %q, want no such feature", msg)
	}
	do(tab, "the analyst's query",
		chromedp.Navigate(base+"#/query"),
		chromedp.WaitVisible(chromedp.ID("q-run")),
		chromedp.SendKeys(chromedp.ID("q-sql"), "SELECT price_fit FROM user_item WHERE user_id = '50' AND item_id = '200'"),
		chromedp.Click(chromedp.ID("q-run")),
		chromedp.WaitVisible(chromedp.ID("q-error")),
	)
	if msg := evalJS[string](t, tab, `document.getElementById("q-error").textContent`); !strings.Contains(msg, "user_item") || strings.Contains(msg, "item_price") {
		t.Errorf("the analyst's query of user_item: %q, want an unknown table naming nothing hidden", msg)
	}
	do(tab, "the analyst's live page",
		chromedp.Navigate(base+"#/live"),
		chromedp.WaitVisible(chromedp.CSS(`svg[data-plot="rate"]`)),
		chromedp.WaitVisible(chromedp.ID("slow")),
	)
	shot(tab, "analyst")
	if body := evalJS[string](t, tab, `document.getElementById("slow").innerText`); strings.Contains(body, "user_item") {
		t.Errorf("the analyst's live page shows user_item's queries:\n%s", body)
	}
}

// getJSON decodes the answer of GET url, sent with token (if any).
func getJSON(t *testing.T, url, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// metricSum sums the samples of url's Prometheus text whose lines start
// with prefix.
func metricSum(t *testing.T, url, prefix string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %q", url, line)
			}
			sum += v
		}
	}
	return sum
}

// evalJS evaluates js in the tab of ctx.
func evalJS[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// userItemPrices computes user_item's price features for one pair in
// DuckDB SQL over the generated data (marketplace.py: price_diff =
// |item.most_recent_price − user.average_purchase_price|, ratio =
// diff / average, fit = 1 / (1 + ratio²)); several values when the most
// recent price is a tie.
func userItemPrices(t *testing.T, user, item string) map[string][]float64 {
	t.Helper()
	at := sqlTime(anchor)
	rows := referenceRows(t, `WITH
		recent AS (SELECT value, created_at FROM marketplace_item_prices WHERE item_id = ? AND created_at <= `+at+` AND value IS NOT NULL),
		mrp AS (SELECT value FROM recent WHERE created_at = (SELECT max(created_at) FROM recent)),
		app AS (SELECT avg(value) AS a FROM marketplace_item_prices WHERE buyer_hid = ? AND kind = 'purchase' AND created_at <= `+at+`)
		SELECT mrp.value, app.a FROM mrp, app`, item, user)
	out := map[string][]float64{}
	for _, r := range rows {
		price, avg := toFloat(r[0]), toFloat(r[1])
		diff := math.Abs(price - avg)
		ratio := diff / avg
		out["price_diff"] = append(out["price_diff"], diff)
		out["price_diff_ratio"] = append(out["price_diff_ratio"], ratio)
		out["price_fit"] = append(out["price_fit"], 1/(1+ratio*ratio))
	}
	if len(rows) == 0 {
		t.Fatalf("the reference has no price for item %s and user %s", item, user)
	}
	return out
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int64:
		return float64(v)
	}
	return math.NaN()
}

func anyClose(got float64, want []float64) bool {
	for _, w := range want {
		if math.Abs(got-w) <= 1e-9*math.Max(1, math.Abs(w)) {
			return true
		}
	}
	return false
}

// TestConsoleCommand runs `fletch console` on a repository on disk with
// the embedded default (its DuckDB file holding the generated data): the
// catalogue, and a query answered as DuckDB answers it, with no server.
func TestConsoleCommand(t *testing.T) {
	dir := filepath.Join(workDir, "console-repo")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	if err := os.MkdirAll(filepath.Join(dir, ".fletch"), 0o755); err != nil {
		t.Fatal(err)
	}
	generateDuckDB(t, filepath.Join(dir, ".fletch", "fletch.duckdb"))
	listen, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "console", "--repo", dir, "--listen", listen)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "fletch console:") {
				ready <- sc.Text()
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case line := <-ready:
		if !strings.Contains(line, "http://"+listen+"/console/") || !strings.Contains(line, "6 feature classes") {
			t.Errorf("fletch console says %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("fletch console did not start:\n%s", stderr.String())
	}
	base := "http://" + listen + "/console/"
	var cat struct {
		Classes []struct{ Table string } `json:"classes"`
	}
	getJSON(t, base+"api/catalogue", "", &cat)
	if len(cat.Classes) != 6 {
		t.Errorf("the catalogue lists %d classes, want marketplace.py's 6", len(cat.Classes))
	}
	body := `{"class": "user", "inputs": {"id": ["50", "7"]}, "outputs": ["full_name"], "now": "` + anchor.Format(time.RFC3339) + `"}`
	res, err := http.Post(base+"api/query", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ans struct {
		Rows  [][]struct{ V any } `json:"rows"`
		Error string              `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || ans.Error != "" || len(ans.Rows) != 2 {
		t.Fatalf("query: %v %q %v", err, ans.Error, ans.Rows)
	}
	want := referenceRows(t, `SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid IN ('50', '7') ORDER BY hid = '7'`)
	for i, w := range want {
		if ans.Rows[i][0].V != w[0] {
			t.Errorf("row %d: full_name %v, want %v (DuckDB)", i, ans.Rows[i][0].V, w[0])
		}
	}
	// No server: no live metrics, and the page says why.
	var live map[string]string
	getJSON(t, base+"api/live", "", &live)
	if !strings.Contains(live["error"], "fletch serve") {
		t.Errorf("live without a server: %v", live)
	}
}

// TestConsoleAuthOff: without auth (fletch console, fletch demo) the page
// says so, and the mode, with nothing else (it showed "auth offnull").
func TestConsoleAuthOff(t *testing.T) {
	browser := chromium(t)
	dir := filepath.Join(workDir, "console-open")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	listen, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "console", "--repo", dir, "--listen", listen)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "fletch console:"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fletch console did not start:\n%s", out.String())
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancelStep := context.WithTimeout(bctx, 20*time.Second)
	defer cancelStep()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+listen+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#classgraph g.node`))); err != nil {
		t.Fatal(err)
	}
	if who := evalJS[string](t, bctx, `document.getElementById("who").textContent`); who != "auth off · repository" {
		t.Errorf("the page says %q, want %q", who, "auth off · repository")
	}
}
