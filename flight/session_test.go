package flight

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// cookieClient serves srv and connects a client that keeps cookies, as
// JDBC does: the session lives in the cookie.
func cookieClient(t *testing.T, srv *Server, mem memory.Allocator) *flightsql.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	cl, err := flightsql.NewClient(lis.Addr().String(), nil, []arrowflight.ClientMiddleware{arrowflight.NewClientCookieMiddleware()},
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cl.Alloc = mem
	t.Cleanup(func() {
		cl.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return cl
}

func stringOption(s string) *arrowflight.SessionOptionValue {
	v, err := arrowflight.NewSessionOptionValue(s)
	if err != nil {
		panic(err)
	}
	return &v
}

func sessionOptionsOf(t *testing.T, ctx context.Context, cl *flightsql.Client) map[string]string {
	t.Helper()
	res, err := cl.GetSessionOptions(ctx, &arrowflight.GetSessionOptionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range res.GetSessionOptions() {
		out[k] = v.GetStringValue()
	}
	return out
}

func TestSessionOptions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := cookieClient(t, srv, mem)
	ctx := context.Background()

	if got := sessionOptionsOf(t, ctx, cl); len(got) != 2 || got["catalog"] != "fletch" || got["schema"] != "features" {
		t.Errorf("a new session's options: %v", got)
	}

	// What is wrong is reported option by option; the rest is set.
	at := "2026-01-20T06:00:00Z"
	res, err := cl.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: map[string]*arrowflight.SessionOptionValue{
		"catalog":    stringOption("FLETCH"),
		"schema":     stringOption("public"),
		"fletch.now": stringOption(at),
		"fletch.nwo": stringOption(at),
	}})
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for k, v := range res.GetErrors() {
		errs[k] = v.GetValue().String()
	}
	if len(errs) != 2 || errs["schema"] != "INVALID_VALUE" || errs["fletch.nwo"] != "INVALID_NAME" {
		t.Errorf("errors %v, want schema INVALID_VALUE and fletch.nwo INVALID_NAME", errs)
	}
	if got := sessionOptionsOf(t, ctx, cl); got["fletch.now"] != at || got["catalog"] != "FLETCH" || got["schema"] != "features" {
		t.Errorf("options after setting: %v", got)
	}

	// A bad time is refused and keeps the one set.
	res, err = cl.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: map[string]*arrowflight.SessionOptionValue{"fletch.now": stringOption("yesterday")}})
	if err != nil || res.GetErrors()["fletch.now"].GetValue().String() != "INVALID_VALUE" {
		t.Errorf("fletch.now = yesterday: %v %v", res, err)
	}

	// Later queries of the session run at fletch.now: the same answer as
	// __as_of__, checked against DuckDB at that time (not the server's
	// clock, e2eNow).
	keys := []string{"u5", "u1", "u32", "u63"}
	query := func(cl *flightsql.Client, sql string) []string {
		t.Helper()
		return executeRows(t, ctx, cl, sql)
	}
	where := ` FROM user WHERE id IN ('u5', 'u1', 'u32', 'u63')`
	want := referenceRows(t, db, keys, at)
	compareRows(t, query(cl, `SELECT `+e2eSelect+where), want)
	// An explicit __as_of__ still wins.
	compareRows(t, query(cl, `SELECT `+e2eSelect+where+` AND __as_of__ = '`+e2eNow.Format(time.RFC3339)+`'`), pointInTimeRows(t, db, keys, e2eNow.Format(time.RFC3339)))
	// Prepared statements too.
	stmt, err := cl.Prepare(ctx, `SELECT `+e2eSelect+where)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stmt.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	compareRows(t, resultRows(recs), want)
	releaseAll(recs)
	if err := stmt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Another client has its own session, on the server's clock.
	compareRows(t, query(cookieClient(t, srv, mem), `SELECT `+e2eSelect+where), referenceRows(t, db, keys, e2eNow.Format(time.RFC3339)))

	// Unsetting: an empty value.
	if _, err := cl.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: map[string]*arrowflight.SessionOptionValue{"catalog": {}}}); err != nil {
		t.Fatal(err)
	}
	if got := sessionOptionsOf(t, ctx, cl); got["catalog"] != "fletch" || got["fletch.now"] != at {
		t.Errorf("after unsetting the catalog: %v", got)
	}

	// Closing ends the session: the next call starts a new one.
	closed, err := cl.CloseSession(ctx, &arrowflight.CloseSessionRequest{})
	if err != nil || closed.GetStatus() != arrowflight.CloseSessionResultClosed {
		t.Fatalf("CloseSession: %v %v", closed, err)
	}
	if got := sessionOptionsOf(t, ctx, cl); len(got) != 2 || got["fletch.now"] != "" {
		t.Errorf("options after closing the session: %v", got)
	}
	compareRows(t, query(cl, `SELECT `+e2eSelect+where), referenceRows(t, db, keys, e2eNow.Format(time.RFC3339)))
}

// TestSessionCookieGarbled: a cookie the server cannot read starts a fresh
// session instead of failing the call (arrow-go's middleware would panic).
func TestSessionCookieGarbled(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	for _, cookie := range []string{"arrow_flight_session=%%%not-base64", "arrow_flight_session=AAAA", "arrow_flight_session="} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "cookie", cookie)
		if got := sessionOptionsOf(t, ctx, cl); got["catalog"] != "fletch" {
			t.Errorf("cookie %q: options %v", cookie, got)
		}
	}
}

// TestRecomputeFeaturesSessionOption: fletch.recompute_features takes
// true, false or a list of feature names, and reaches the session's later
// queries: false reads the offline store, which this server lacks — the
// error names the configuration to add.
func TestRecomputeFeaturesSessionOption(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := cookieClient(t, srv, mem)
	ctx := context.Background()
	set := func(v *arrowflight.SessionOptionValue) string {
		t.Helper()
		res, err := cl.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: map[string]*arrowflight.SessionOptionValue{"fletch.recompute_features": v}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetErrors()["fletch.recompute_features"].GetValue().String()
	}
	value := func(x any) *arrowflight.SessionOptionValue {
		v, err := arrowflight.NewSessionOptionValue(x)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	if got := set(value(int64(3))); got != "INVALID_VALUE" {
		t.Errorf("recompute_features = 3: %s, want INVALID_VALUE", got)
	}
	for _, v := range []any{false, "false", []string{"user.email"}} {
		if got := set(value(v)); got != "UNSPECIFIED" {
			t.Fatalf("recompute_features = %v: %s", v, got)
		}
		info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = 'u1'`)
		if err == nil { // the statement runs when its answer is read
			rdr, derr := cl.DoGet(ctx, info.Endpoint[0].Ticket)
			if err = derr; err == nil {
				for rdr.Next() {
				}
				err = rdr.Err()
				rdr.Release()
			}
		}
		if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "offline_store:") {
			t.Errorf("recompute_features = %v without an offline store: %v", v, err)
		}
	}
	if got := set(value(true)); got != "UNSPECIFIED" {
		t.Fatalf("recompute_features = true: %s", got)
	}
	info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = 'u1'`)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	releaseAll(recs)
}

// TestMaterializedSessionOptions: fletch.use_materialized_offline_query and
// fletch.align_offline_chalk_window_with_materialization reach the
// session's later queries, as the native query's planner_options do: rows
// at their own __as_of__ see review_count's 1-day tiles (computed at the
// source: nothing is backfilled here), materialized B(t − w) ≤ created_at
// < B(t), aligned B(t − w) ≤ created_at ≤ t, each checked against DuckDB
// SQL; unset, the exact windows. No test set them before.
func TestMaterializedSessionOptions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := cookieClient(t, srv, mem)
	ctx := context.Background()
	set := func(name string, x any) string {
		t.Helper()
		v, err := arrowflight.NewSessionOptionValue(x)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cl.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: map[string]*arrowflight.SessionOptionValue{name: &v}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetErrors()[name].GetValue().String()
	}
	query := func(sql string) []string {
		t.Helper()
		return executeRows(t, ctx, cl, sql)
	}
	const asOf = "2026-02-10T15:00:00Z"
	var keys, quoted []string
	for i := 1; i <= 40; i++ {
		keys = append(keys, fmt.Sprintf("u%d", i))
		quoted = append(quoted, fmt.Sprintf("'u%d'", i))
	}
	where := ` FROM user WHERE id IN (` + strings.Join(quoted, ", ") + `) AND __as_of__ = '` + asOf + `'`
	windows := `SELECT "review_count[7d]", review_count__2592000__` + where
	// The materialized windows by DuckDB: whole days from B(t − w) to B(t).
	materialized := func() []string {
		var out []string
		for _, k := range keys {
			var w7, w30 int64
			if err := db.DB().QueryRow(`SELECT
				count(*) FILTER (WHERE created_at >= `+alignedStart(asOf, "7 DAY", 86400)+`),
				count(*) FILTER (WHERE created_at >= `+alignedStart(asOf, "30 DAY", 86400)+`)
				FROM marketplace_reviews WHERE user_hid = ? AND created_at < `+alignedStart(asOf, "0 DAY", 86400), k).Scan(&w7, &w30); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d|%d", w7, w30))
		}
		return out
	}()
	exact, aligned := pointInTimeRows(t, db, keys, asOf), referenceRows(t, db, keys, asOf)
	if slices.Equal(exact, aligned) || slices.Equal(materialized, windowsOf(aligned)) || slices.Equal(materialized, windowsOf(exact)) {
		t.Fatal("the fixture does not tell the three windows apart at this time: pick another")
	}

	if got := set(optMaterialized, int64(3)); got != "INVALID_VALUE" {
		t.Errorf("%s = 3: %s, want INVALID_VALUE", optMaterialized, got)
	}
	compareRows(t, query(`SELECT `+e2eSelect+where), exact)
	if got := set(optAlign, true); got != "UNSPECIFIED" {
		t.Fatalf("%s = true: %s", optAlign, got)
	}
	compareRows(t, query(`SELECT `+e2eSelect+where), aligned)
	if got := set(optAlign, "false"); got != "UNSPECIFIED" {
		t.Fatalf("%s = false: %s", optAlign, got)
	}
	if got := set(optMaterialized, "true"); got != "UNSPECIFIED" {
		t.Fatalf("%s = true: %s", optMaterialized, got)
	}
	compareRows(t, query(windows), materialized)
	if got := set(optMaterialized, false); got != "UNSPECIFIED" {
		t.Fatalf("%s = false: %s", optMaterialized, got)
	}
	compareRows(t, query(`SELECT `+e2eSelect+where), exact)
}

// windowsOf keeps the two review_count columns of e2eSelect's rows.
func windowsOf(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		cells := strings.Split(r, "|")
		out[i] = cells[3] + "|" + cells[4]
	}
	return out
}

// executeRows runs sql and returns its answer's rows as strings.
func executeRows(t *testing.T, ctx context.Context, cl *flightsql.Client, sql string) []string {
	t.Helper()
	info, err := cl.Execute(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	return resultRows(recs)
}
