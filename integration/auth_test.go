package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/driver"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/auth"
)

// securedServer is `fletch serve` of the marketplace with auth and TLS.
type securedServer struct {
	dir    string // the repository, with server.crt
	addr   string
	certs  *x509.CertPool
	tokens map[string]string // by name
}

// serveSecured writes a repository whose fletch.yaml has three tokens
// (hashed by `fletch token hash`) and TLS with a self-signed certificate,
// generates the demo's data into its DuckDB file, and runs `fletch serve`
// on it until the test ends.
func serveSecured(t *testing.T) *securedServer {
	t.Helper()
	dir := filepath.Join(workDir, "secured")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	generateDuckDB(t, filepath.Join(dir, "market.duckdb"))
	certPEM, keyPEM, err := auth.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("server.crt", certPEM)
	write("server.key", keyPEM)
	s := &securedServer{dir: dir, certs: x509.NewCertPool(), tokens: map[string]string{}}
	s.certs.AppendCertsFromPEM(certPEM)
	yaml := "sources:\n  marketplace:\n    kind: duckdb\n    path: market.duckdb\nauth:\n  tokens:\n"
	for _, tok := range []struct{ name, scopes string }{
		{"analyst", "read:user"}, {"moderator", "read:review"}, {"ops", "admin"},
	} {
		token, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[tok.name] = token
		hash, stderr, err := fletch(t, "token", "hash", token)
		if err != nil {
			t.Fatalf("fletch token hash: %v\n%s", err, stderr)
		}
		yaml += fmt.Sprintf("    - name: %s\n      hash: %s\n      scopes: [%s]\n", tok.name, strings.TrimSpace(hash), tok.scopes)
	}
	yaml += "server:\n  tls:\n    cert: server.crt\n    key: server.key\n"
	write("fletch.yaml", []byte(yaml))

	var log *lockedBuffer
	s.addr, log = startServe(t, dir)
	for _, want := range []string{"auth on: 3 token(s)", "TLS on"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("fletch serve did not say %q:\n%s", want, log.String())
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fletch serve logged \"serving\" but %s refuses connections", s.addr)
		}
	}
	return s
}

func (s *securedServer) client(t *testing.T, mem memory.Allocator) *flightsql.Client {
	t.Helper()
	cl, err := flightsql.NewClient(s.addr, nil, nil, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.certs})))
	if err != nil {
		t.Fatal(err)
	}
	cl.Alloc = mem
	t.Cleanup(func() { cl.Close() })
	return cl
}

func withAuth(value string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", value)
}

// refused checks err's code and message, and that the message holds none
// of leaks (tokens, feature values).
func refused(t *testing.T, what string, err error, code codes.Code, want string, leaks ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), want) {
		t.Errorf("%s: got %v, want %s containing %q", what, err, code, want)
		return
	}
	for _, l := range leaks {
		if l != "" && strings.Contains(st.Message(), l) {
			t.Errorf("%s: the refusal %q leaks %q", what, st.Message(), l)
		}
	}
}

func TestAuthAndTLS(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := serveSecured(t)
	cl := s.client(t, mem)
	analyst, ops := s.tokens["analyst"], s.tokens["ops"]
	fullName := referenceRows(t, `SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '50'`)[0][0].(string)
	title := referenceRows(t, `SELECT title FROM marketplace_items WHERE id = '200'`)[0][0].(string)
	const userSQL = `SELECT full_name FROM user WHERE id = '50'`
	const itemSQL = `SELECT title FROM item WHERE id = '200'`
	query := func(ctx context.Context, sql, want string) {
		t.Helper()
		info, err := cl.Execute(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		_, rows := fetch(t, ctx, cl, info)
		if len(rows) != 1 || rows[0][0] != want {
			t.Fatalf("%s: %v, want %q", sql, rows, want)
		}
	}

	// Refused: no token, a wrong one, a malformed header; metadata too.
	_, err := cl.Execute(context.Background(), userSQL)
	refused(t, "no token", err, codes.Unauthenticated, "no credentials", fullName)
	_, err = cl.Execute(withAuth("Bearer fletch_not-a-token"), userSQL)
	refused(t, "wrong token", err, codes.Unauthenticated, "unknown token", "fletch_not-a-token", fullName)
	_, err = cl.Execute(withAuth("Bearer"), userSQL)
	refused(t, "malformed", err, codes.Unauthenticated, "malformed", fullName)
	_, err = cl.GetTables(context.Background(), &flightsql.GetTablesOpts{IncludeSchema: true})
	refused(t, "GetTables without a token", err, codes.Unauthenticated, "no credentials")
	_, err = cl.Client.AuthenticateBasicToken(context.Background(), "analyst", "wrong")
	refused(t, "handshake with a wrong token", err, codes.Unauthenticated, "unknown token", "wrong")

	// Accepted: Bearer, Basic with the token as the password on every call
	// (the database/sql driver), and the handshake's bearer header.
	query(withAuth("Bearer "+analyst), userSQL, fullName)
	query(withAuth("Basic "+base64.StdEncoding.EncodeToString([]byte("anyone:"+analyst))), userSQL, fullName)
	ctx, err := cl.Client.AuthenticateBasicToken(context.Background(), "analyst", analyst)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+analyst {
		t.Errorf("the handshake answered %d authorization values, want the bearer token", len(got))
	}
	query(ctx, userSQL, fullName)

	// Scopes: the user-scoped token reads no item, directly (an unknown
	// table, as if it did not exist), prepared, scanned or joined, nor a
	// feature aggregating reviews (refused by the feature's name); the
	// review-scoped one no has-one reach into item.
	_, err = cl.Execute(ctx, itemSQL)
	refused(t, "analyst reads item", err, codes.InvalidArgument, `unknown table "item"`, title)
	_, err = cl.Prepare(ctx, itemSQL)
	refused(t, "analyst prepares item", err, codes.InvalidArgument, `unknown table "item"`, title)
	_, err = cl.Execute(ctx, `SELECT u.id, i.title FROM "user" u JOIN item i ON true LIMIT 1`)
	refused(t, "analyst joins item", err, codes.InvalidArgument, `unknown table "item"`, title)
	_, err = cl.Execute(ctx, `SELECT average_rating_given FROM user WHERE id = '50'`)
	refused(t, "analyst aggregates reviews", err, codes.PermissionDenied, `may not read column average_rating_given of user`, "review")
	_, err = cl.Execute(ctx, `SELECT max(average_rating_given) FROM user`)
	refused(t, "analyst aggregates reviews, scanned", err, codes.PermissionDenied, `may not read column average_rating_given of user`, "review")
	moderator := withAuth("Bearer " + s.tokens["moderator"])
	_, err = cl.Execute(moderator, `SELECT star_rating, item.title FROM review WHERE id = 1`)
	refused(t, "moderator reaches item", err, codes.PermissionDenied, `may not read column item.title of review`, title)

	// The catalogue lists only readable tables (and so only their columns).
	tables := func(ctx context.Context) (names []string, schemas string) {
		info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{IncludeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		_, rows := fetch(t, ctx, cl, info)
		for _, r := range rows {
			names = append(names, r[2].(string))
			// GoValue gives binary cells as base64.
			schema, err := base64.StdEncoding.DecodeString(r[4].(string))
			if err != nil {
				t.Fatal(err)
			}
			schemas += string(schema)
		}
		return names, schemas
	}
	if got, schemas := tables(ctx); strings.Join(got, " ") != "user" || strings.Contains(schemas, "seller_id") {
		t.Errorf("the analyst's tables: %v, want user (and none of item's columns)", got)
	}
	if got, schemas := tables(withAuth("Bearer " + ops)); len(got) != 6 || !strings.Contains(schemas, "seller_id") {
		t.Errorf("the admin's tables: %v, want all 6", got)
	}

	// Go's database/sql driver sends Basic (user:password) or Bearer
	// (token=) on every call, without a handshake.
	if err := driver.RegisterTLSConfig("fletch-auth-test", &tls.Config{RootCAs: s.certs}); err != nil {
		t.Fatal(err)
	}
	defer driver.UnregisterTLSConfig("fletch-auth-test")
	for _, dsn := range []string{
		"flightsql://analyst:" + analyst + "@" + s.addr + "?tls=fletch-auth-test&timeout=10s",
		"flightsql://" + s.addr + "?tls=fletch-auth-test&timeout=10s&token=" + analyst,
	} {
		db, err := sql.Open("flightsql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.QueryRow(userSQL).Scan(&got); err != nil || got != fullName {
			t.Errorf("database/sql: %q, %v; want %q", got, err, fullName)
		}
		err = db.QueryRow(itemSQL).Scan(&got)
		if err == nil || !strings.Contains(err.Error(), `unknown table "item"`) || strings.Contains(err.Error(), title) {
			t.Errorf("database/sql reading item: %v, want an unknown table", err)
		}
		db.Close()
	}

	// The server kept serving: the admin reads item.
	query(withAuth("Bearer "+ops), itemSQL, title)

	// Plaintext is refused by the TLS server.
	plain, err := flightsql.NewClient(s.addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	tctx, cancel := context.WithTimeout(withAuth("Bearer "+ops), 5*time.Second)
	defer cancel()
	_, err = plain.Execute(tctx, userSQL)
	refused(t, "plaintext", err, codes.Unavailable, "")

	t.Run("adbc", func(t *testing.T) { adbcAuth(t, s, fullName, title) })
}

// adbcScript connects Python's ADBC Flight SQL driver with a user name and
// the token as password over TLS: the driver's handshake fails unless the
// answer carries the bearer header.
const adbcScript = `
import sys
import adbc_driver_flightsql.dbapi as flightsql
addr, token, ca = sys.argv[1:4]
kw = {"username": "analyst", "password": token,
      "adbc.flight.sql.client_option.tls_root_certs": open(ca).read()}
with flightsql.connect("grpc+tls://" + addr, db_kwargs=kw) as conn:
    cur = conn.cursor()
    cur.execute("SELECT full_name FROM user WHERE id = '50'")
    print("full_name:", cur.fetchone()[0])
    try:
        cur.execute("SELECT title FROM item WHERE id = '200'")
        print("item:", cur.fetchall())
    except Exception as e:
        print("item refused:", e)
    objs = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    print("tables:", " ".join(sorted(t["table_name"] for c in objs for s in c["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or [])))
`

func adbcAuth(t *testing.T, s *securedServer, fullName, title string) {
	need(t, "python3")
	root := repoRoot(t)
	runTool(t, root, os.Environ(), "bash", filepath.Join(root, "clients/python/setup.sh"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(root, ".venv/bin/python"), "-c", adbcScript,
		s.addr, s.tokens["analyst"], filepath.Join(s.dir, "server.crt")).CombinedOutput()
	if err != nil {
		t.Fatalf("ADBC: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"full_name: " + fullName + "\n", "item refused:", `unknown table "item"`, "tables: user\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("ADBC output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, title) {
		t.Errorf("ADBC output shows item 200's title %q:\n%s", title, got)
	}
}
