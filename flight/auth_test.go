package flight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

const (
	analystToken = "fletch_analyst-test-token"
	opsToken     = "fletch_ops-test-token"
)

// authServer serves the marketplace over DuckDB with two tokens and TLS
// (and the options tune sets), and returns a client trusting its self-signed certificate.
func authServer(t *testing.T, mem memory.Allocator, tune ...func(*Options)) (*flightsql.Client, string, *duckdb.Source) {
	t.Helper()
	v, err := auth.NewVerifier([]auth.Token{
		{Name: "analyst", Hash: auth.Hash(analystToken), Scopes: []string{"read:user", "read:review"}},
		{Name: "ops", Hash: auth.Hash(opsToken), Scopes: []string{"admin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := auth.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem)
	opts := Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow }, Auth: v,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	for _, f := range tune {
		f(&opts)
	}
	srv := NewServer(engine, opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl, err := flightsql.NewClient(lis.Addr().String(), nil, nil,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return cl, lis.Addr().String(), db
}

func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// wantCode checks err's code and that its message holds want and none of
// the secrets (tokens, data).
func wantCode(t *testing.T, what string, err error, code codes.Code, want string, secrets ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), want) {
		t.Errorf("%s: got %v, want %s containing %q", what, err, code, want)
		return
	}
	for _, s := range secrets {
		if strings.Contains(st.Message(), s) {
			t.Errorf("%s: the message %q leaks %q", what, st.Message(), s)
		}
	}
}

func TestAuthRefusals(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, _ := authServer(t, mem)
	const userQuery = `SELECT full_name FROM user WHERE id = 'u5'`

	_, err := cl.Execute(context.Background(), userQuery)
	wantCode(t, "no token", err, codes.Unauthenticated, "no credentials")
	_, err = cl.Execute(bearer("fletch_wrong"), userQuery)
	wantCode(t, "wrong token", err, codes.Unauthenticated, "unknown token", "fletch_wrong")
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Token "+opsToken)
	_, err = cl.Execute(ctx, userQuery)
	wantCode(t, "other scheme", err, codes.Unauthenticated, "must be Bearer or Basic", opsToken)
	// Metadata too: nothing is listed without a token.
	_, err = cl.GetTables(context.Background(), &flightsql.GetTablesOpts{})
	wantCode(t, "GetTables without a token", err, codes.Unauthenticated, "no credentials")
	_, err = cl.Client.AuthenticateBasicToken(context.Background(), "analyst", "fletch_wrong")
	wantCode(t, "handshake with a wrong token", err, codes.Unauthenticated, "unknown token", "fletch_wrong")

	analyst := bearer(analystToken)
	// Plans are cached by SQL text: one planned for an admin first must
	// still be refused to the analyst.
	if info, err := cl.Execute(bearer(opsToken), `SELECT title FROM item WHERE id = 'i1'`); err != nil {
		t.Fatalf("admin: %v", err)
	} else if _, recs := fetch(t, bearer(opsToken), cl, info); len(recs) > 0 {
		releaseAll(recs)
	}
	// A class out of scope is an unknown table, exactly like a missing
	// one; a column that needs one is refused by its own name.
	for _, tc := range []struct {
		name, sql string
		code      codes.Code
		want      string
		secrets   []string
	}{
		{"another class", `SELECT title FROM item WHERE id = 'i1'`, codes.InvalidArgument, `1:19: unknown table "item"`, []string{"may not", "title"}},
		{"another class, scanned", `SELECT count(*) FROM item`, codes.InvalidArgument, `1:22: unknown table "item"`, []string{"may not"}},
		{"another class, joined", `SELECT r.id FROM review r JOIN item i ON i.id = r.item_id`, codes.InvalidArgument, `1:32: unknown table "item"`, []string{"may not"}},
		{"another class, in a sub-select", `SELECT * FROM (SELECT * FROM fletch.features.item) AS t LIMIT 1`, codes.InvalidArgument, `unknown table "item"`, []string{"may not"}},
		{"a missing class", `SELECT title FROM itemz WHERE id = 'i1'`, codes.InvalidArgument, `1:19: unknown table "itemz"`, []string{"did you mean"}},
		{"has-one reach", `SELECT star_rating, item.title FROM review WHERE id = 1`, codes.PermissionDenied, `may not read column item.title of review`, []string{"Item 1"}},
		{"has-one reach, scanned", `SELECT "item.title" FROM review LIMIT 1`, codes.PermissionDenied, `may not read column item.title of review`, []string{"Item 1"}},
		{"has-one reach in a feature", `SELECT normalized_rating FROM review WHERE id = 1`, codes.PermissionDenied, `may not read column normalized_rating of review`, []string{"Item 1", "item"}},
		{"has-many reach in a feature", `SELECT average_rating_given FROM user WHERE id = 'u5'`, codes.OK, ``, nil},
		{"a hidden class's column typo", `SELECT item.titl FROM review WHERE id = 1`, codes.PermissionDenied, `1:8: token "analyst" may not read part of this query`, []string{"Item 1", "title"}},
	} {
		_, err := cl.Execute(analyst, tc.sql)
		if tc.code == codes.OK {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		wantCode(t, tc.name, err, tc.code, tc.want, tc.secrets...)
		_, err = cl.Prepare(analyst, tc.sql)
		wantCode(t, tc.name+" (prepare)", err, tc.code, tc.want, tc.secrets...)
	}
	// A typo near a hidden class learns nothing of it: the suggestion is
	// left out (it was refused as reading item, naming it).
	_, err = cl.Execute(analyst, `SELECT title FROM itme WHERE id = 'i1'`)
	wantCode(t, "typo near a hidden class", err, codes.InvalidArgument, `unknown table "itme"`, "item\"", "may not read")
	_, err = cl.Prepare(analyst, `SELECT title FROM itme WHERE id = 'i1'`)
	wantCode(t, "typo near a hidden class (prepare)", err, codes.InvalidArgument, `unknown table "itme"`, "item\"", "may not read")
	typo := substraitPlan(t, strings.Replace(userPlan(equalFn, `{"singularOrList": {"value": `+idField+`, "options": [`+strLit("i1")+`]}}`), `["user"]`, `["itme"]`, 1))
	_, err = cl.ExecuteSubstrait(analyst, typo)
	wantCode(t, "Substrait: typo near a hidden class", err, codes.InvalidArgument, `unknown table "itme"`, "item\"", "may not read")
	_, err = cl.PrepareSubstrait(analyst, typo)
	wantCode(t, "Substrait: typo near a hidden class (prepare)", err, codes.InvalidArgument, `unknown table "itme"`, "item\"", "may not read")
	in := stringBatch(mem, "id", "i1")
	defer in.Release()
	_, err = exchange(analyst, mem, cl, `{"query": {"class": "itm"}}`, in.Schema(), in)
	wantCode(t, "native: typo near a hidden class", err, codes.InvalidArgument, `unknown feature class "itm"`, "item\"", "may not read")
	// A typo past a relation into a hidden class, read again against the
	// classes the token sees, still meets the hidden class: its features
	// are not suggested.
	reviews := stringBatch(mem, "review.id", "1")
	defer reviews.Release()
	_, err = exchange(analyst, mem, cl, `{"query": {"outputs": ["review.item.titl"]}}`, reviews.Schema(), reviews)
	wantCode(t, "native: a hidden class's feature typo", err, codes.PermissionDenied, `may not read part of this query`, "title")
	// A visible class keeps its suggestions.
	_, err = cl.Execute(analyst, `SELECT ful_name FROM user WHERE id = 'u5'`)
	wantCode(t, "typo", err, codes.InvalidArgument, `did you mean "full_name"`)

	// A handle prepared by ops is no capability for the analyst.
	ops := bearer(opsToken)
	prep, err := cl.Prepare(ops, `SELECT title FROM item WHERE id = 'i1'`)
	if err != nil {
		t.Fatal(err)
	}
	defer prep.Close(ops)
	stolen, err := cl.LoadPreparedStatementFromResult(&flightsql.CreatePreparedStatementResult{PreparedStatementHandle: prep.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stolen.Execute(analyst)
	wantCode(t, "another's handle", err, codes.NotFound, "unknown or expired prepared statement")
	info, err := prep.Execute(ops)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ops, cl, info)
	defer releaseAll(recs)
	if got := column(recs, 0); len(got) != 1 || got[0] != "Item 1" {
		t.Errorf("ops reads item i1: %v", got)
	}
}

func TestAuthAccepted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, db := authServer(t, mem)
	// The reference: the resolver's table, read by DuckDB itself.
	var want string
	if err := db.DB().QueryRow(`SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = 'u5'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	query := func(ctx context.Context) {
		t.Helper()
		info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = 'u5'`)
		if err != nil {
			t.Fatal(err)
		}
		_, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if got := column(recs, 0); len(got) != 1 || got[0] != want {
			t.Errorf("full_name = %v, want %s", got, want)
		}
	}
	query(bearer(analystToken))
	// Basic with the token as the password, on every call (Go's database/sql driver).
	query(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("whoever:"+analystToken))))
	// The handshake answers the bearer header, which is then sent.
	ctx, err := cl.Client.AuthenticateBasicToken(context.Background(), "analyst", analystToken)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+analystToken {
		t.Fatalf("handshake answered authorization %q", got)
	}
	query(ctx)

	// The catalogue lists only what a token may read, columns included.
	tables := func(ctx context.Context) (string, map[string]bool) {
		info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{IncludeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		_, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		cols := map[string]bool{}
		for _, r := range recs {
			for i := 0; i < int(r.NumRows()); i++ {
				ts, err := arrowflight.DeserializeSchema(r.Column(4).(*array.Binary).Value(i), mem)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range ts.Fields() {
					cols[r.Column(2).(*array.String).Value(i)+":"+f.Name] = true
				}
			}
		}
		return strings.Join(column(recs, 2), " "), cols
	}
	// Has-one paths are listed only into classes the token may read.
	got, cols := tables(bearer(analystToken))
	if got != "review user" || !cols["review:user.full_name"] || cols["review:item.title"] {
		t.Errorf("analyst's tables: %s; review's paths: user.full_name %v, item.title %v (want true, false)", got, cols["review:user.full_name"], cols["review:item.title"])
	}
	if got, cols := tables(bearer(opsToken)); got != "item item_price review seller user user_item" || !cols["review:item.title"] {
		t.Errorf("ops's tables: %s", got)
	}
}

// TestTLSRequired: a plaintext client cannot talk to a TLS server.
func TestTLSRequired(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, addr, _ := authServer(t, mem)
	plain, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(bearer(opsToken), 5*time.Second)
	defer cancel()
	_, err = plain.Execute(ctx, `SELECT full_name FROM user WHERE id = 'u5'`)
	if st, _ := status.FromError(err); err == nil || st.Code() != codes.Unavailable {
		t.Fatalf("plaintext against TLS: %v, want Unavailable", err)
	}
}

// Without auth, a handshake with credentials still answers the bearer
// header (ADBC fails without one), and everything is listed.
func TestAuthOff(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx, err := cl.Client.AuthenticateBasicToken(context.Background(), "me", "secret")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer secret" {
		t.Fatalf("handshake answered authorization %q", got)
	}
	info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{})
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	if got := len(column(recs, 2)); got != 6 {
		t.Errorf("%d tables listed, want 6", got)
	}
}

// The native query is authorized like SQL: against every class its plan
// reads, before any row is read.
func TestAuthNativeQuery(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, db := authServer(t, mem)
	var want string
	if err := db.DB().QueryRow(`SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = 'u5'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	users := stringBatch(mem, "user.id", "u5")
	defer users.Release()
	a, err := exchange(bearer(analystToken), mem, cl, `{"query": {"outputs": ["user.full_name"]}}`, users.Schema(), users)
	if err != nil {
		t.Fatal(err)
	}
	got := column(a.recs, 0)
	a.release()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("native full_name = %v, want %s", got, want)
	}
	items := stringBatch(mem, "item.id", "i1")
	defer items.Release()
	_, err = exchange(bearer(analystToken), mem, cl, `{"query": {"outputs": ["item.title"]}}`, items.Schema(), items)
	wantCode(t, "native item", err, codes.InvalidArgument, `unknown feature class "item"`, "Item 1", "may not read")
	_, err = exchange(bearer(analystToken), mem, cl, `{"query": {"outputs": ["user.average_purchase_price"]}}`, users.Schema(), users)
	wantCode(t, "native has-many reach", err, codes.PermissionDenied, `token "analyst" may not read column user.average_purchase_price of user`, "item_price")
	_, err = exchange(context.Background(), mem, cl, `{"query": {"outputs": ["user.full_name"]}}`, users.Schema(), users)
	wantCode(t, "native without a token", err, codes.Unauthenticated, "no credentials")
}

// TestPreparedStatementsBelongToTheirToken: a handle is another token's
// capability only for the token that prepared it: another token, even an
// admin, finds no such statement to run, bind or close (one token could
// close another's statement, whose next execute was NotFound).
func TestPreparedStatementsBelongToTheirToken(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, _ := authServer(t, mem)
	analyst, ops := bearer(analystToken), bearer(opsToken)
	stmt, err := cl.Prepare(analyst, `SELECT full_name FROM user WHERE id = 'u1'`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(analyst)
	_, err = flightsql.NewPreparedStatement(cl, stmt.Handle()).Execute(ops)
	wantCode(t, "another token executes the handle", err, codes.NotFound, "unknown or expired prepared statement")
	if err := flightsql.NewPreparedStatement(cl, stmt.Handle()).Close(ops); err != nil {
		t.Errorf("another token closing the handle: %v (nothing to close is no error)", err)
	}
	info, err := stmt.Execute(analyst)
	if err != nil {
		t.Fatalf("the owner's statement after another token closed its handle: %v", err)
	}
	_, recs := fetch(t, analyst, cl, info)
	defer releaseAll(recs)
	if got := column(recs, 0); len(got) != 1 || got[0] != "First1 Last1" {
		t.Errorf("the owner's answer %v", got)
	}
}

// TestRefusalsNameNoHiddenClass: a relation whose name is not its class's
// (`product: Widget`) leads into a class the token may not read; a typo
// past it, or a path through it, is refused without naming that class
// (it answered `token "shop" may not read widget`, a name the caller never
// wrote).
func TestRefusalsNameNoHiddenClass(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	src := `from chalk.features import features

@features
class Vendor:
    id: str
    label: str

@features
class Widget:
    id: str
    title: str
    vendor_id: Vendor.id
    maker: Vendor

@features
class Sale:
    id: int
    widget_id: Widget.id
    product: Widget
    amount: float
`
	for name, text := range map[string]string{
		"shop.py":          src,
		"sales.chalk.sql":  "-- resolves: Sale\n-- source: shop\nselect id, widget_id, amount from sales\n",
		"widget.chalk.sql": "-- resolves: Widget\n-- source: shop\nselect id, title, vendor_id from widgets\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const token = "fletch_shop-test-token"
	v, err := auth.NewVerifier([]auth.Token{{Name: "shop", Hash: auth.Hash(token), Scopes: []string{"read:sale"}}})
	if err != nil {
		t.Fatal(err)
	}
	cl := serve(t, NewServer(planner.NewEngine(g, nil, mem), Options{Mem: mem, Auth: v}))
	hidden := regexp.MustCompile(`(?i)\b(widget|vendor)\b`)
	for _, sql := range []string{
		`SELECT product.titl FROM sale WHERE id = 1`,
		`SELECT product.maker.labl FROM sale WHERE id = 1`,
		`SELECT product.x.y.z FROM sale WHERE id = 1`,
		`SELECT "product.titl" FROM sale LIMIT 1`,
		`SELECT product.title FROM sale WHERE id = 1`,
		`SELECT "product.title" FROM sale LIMIT 1`,
	} {
		_, err := cl.Execute(bearer(token), sql)
		if err == nil || hidden.MatchString(status.Convert(err).Message()) {
			t.Errorf("%s: %v, want a refusal naming neither widget nor vendor", sql, err)
		}
	}
}

// TestHiddenClassIsUnknown: a class the token may not read, named by the
// query itself, is answered on every path exactly as a class that does not
// exist is (same code, same message but for the name): the answer must not
// tell the caller the class exists. The native query and Substrait
// answered PermissionDenied `may not read item` where a missing class is
// InvalidArgument `unknown ...` (issue 16, deliverable 1).
func TestHiddenClassIsUnknown(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, _ := authServer(t, mem)
	analyst := bearer(analystToken)
	// Each query names a class by name: the hidden item, or widget, which
	// no repository class is near (no suggestion either way).
	in := func(class string) arrow.RecordBatch { return stringBatch(mem, class+".id", "i1") }
	paths := []struct {
		name string
		run  func(class string) error
	}{
		{"SQL", func(c string) error {
			_, err := cl.Execute(analyst, `SELECT title FROM `+c+` WHERE id = 'i1'`)
			return err
		}},
		{"SQL prepared", func(c string) error {
			_, err := cl.Prepare(analyst, `SELECT title FROM `+c+` WHERE id = 'i1'`)
			return err
		}},
		{"Substrait", func(c string) error {
			_, err := cl.ExecuteSubstrait(analyst, substraitPlan(t, strings.Replace(userPlan(equalFn, `{"singularOrList": {"value": `+idField+`, "options": [`+strLit("i1")+`]}}`), `["user"]`, `["`+c+`"]`, 1)))
			return err
		}},
		{"Substrait prepared", func(c string) error {
			_, err := cl.PrepareSubstrait(analyst, substraitPlan(t, strings.Replace(userPlan(equalFn, `{"singularOrList": {"value": `+idField+`, "options": [`+strLit("i1")+`]}}`), `["user"]`, `["`+c+`"]`, 1)))
			return err
		}},
		{"native class", func(c string) error {
			b := in(c)
			defer b.Release()
			_, err := exchange(analyst, mem, cl, `{"query": {"class": "`+c+`"}}`, b.Schema(), b)
			return err
		}},
		{"native qualified inputs", func(c string) error {
			b := in(c)
			defer b.Release()
			_, err := exchange(analyst, mem, cl, `{"query": {"outputs": ["`+c+`.title"]}}`, b.Schema(), b)
			return err
		}},
		{"native staleness key", func(c string) error {
			b := stringBatch(mem, "user.id", "u5")
			defer b.Release()
			_, err := exchange(analyst, mem, cl, `{"query": {"outputs": ["user.full_name"], "staleness": {"`+c+`.title": "1h"}}}`, b.Schema(), b)
			return err
		}},
	}
	for _, p := range paths {
		hidden, missing := status.Convert(p.run("item")), status.Convert(p.run("widget"))
		if hidden.Code() == codes.OK || missing.Code() == codes.OK {
			t.Errorf("%s: item answered %v, widget %v: both must fail", p.name, hidden.Err(), missing.Err())
			continue
		}
		if hidden.Code() != missing.Code() || hidden.Message() != strings.ReplaceAll(missing.Message(), "widget", "item") {
			t.Errorf("%s: a hidden class answered\n  %v: %s\na missing one\n  %v: %s", p.name, hidden.Code(), hidden.Message(), missing.Code(), missing.Message())
		}
	}
}

// TestStarIsWhatTheTokenMayRead: a `*` read by a scoped token is the
// columns it may read, exactly those it could name one by one, with the
// values an admin gets for them — a BI tool's browse of a class with a
// column computed from a hidden class (user.average_purchase_price reads
// item_price) was refused whole. Naming such a column is still refused.
func TestStarIsWhatTheTokenMayRead(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl, _, _ := authServer(t, mem)
	analyst, ops := bearer(analystToken), bearer(opsToken)
	run := func(ctx context.Context, sql string) (*arrow.Schema, []string, error) {
		t.Helper()
		info, err := cl.Execute(ctx, sql)
		if err != nil {
			return nil, nil, err
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		return schema, resultRows(recs), nil
	}
	for _, where := range []string{`WHERE id IN ('u5', 'u1')`, `ORDER BY id LIMIT 3`} {
		all, _, err := run(ops, `SELECT * FROM user `+where)
		if err != nil {
			t.Fatal(err)
		}
		var mine []string
		for _, f := range all.Fields() {
			_, _, err := run(analyst, `SELECT "`+f.Name+`" FROM user WHERE id = 'u5'`)
			switch status.Code(err) {
			case codes.OK:
				mine = append(mine, f.Name)
			case codes.PermissionDenied:
			default:
				t.Fatalf("analyst naming %s: %v", f.Name, err)
			}
		}
		if len(mine) == len(all.Fields()) || len(mine) < 2 {
			t.Fatalf("the analyst may name %d of user's %d columns: the test needs some of each", len(mine), len(all.Fields()))
		}
		got, rows, err := run(analyst, `SELECT * FROM user `+where)
		if err != nil {
			t.Fatalf("analyst SELECT * %s: %v", where, err)
		}
		var names []string
		for _, f := range got.Fields() {
			names = append(names, f.Name)
		}
		if !slices.Equal(names, mine) {
			t.Errorf("SELECT * %s as the analyst: columns %v, want %v", where, names, mine)
		}
		quoted := make([]string, len(mine))
		for i, n := range mine {
			quoted[i] = `"` + n + `"`
		}
		_, want, err := run(ops, `SELECT `+strings.Join(quoted, ", ")+` FROM user `+where)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows, want) {
			t.Errorf("SELECT * %s as the analyst:\n%v\nthe admin's of those columns:\n%v", where, rows, want)
		}
	}
	_, _, err := run(analyst, `SELECT id, average_purchase_price FROM user WHERE id = 'u5'`)
	wantCode(t, "naming a column computed from a hidden class", err, codes.PermissionDenied, `may not read column average_purchase_price of user`, "item_price")
}
