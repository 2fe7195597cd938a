package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/operators/pyworker/pyworkertest"
)

// digestsPy are resolvers that need CPython: a library call (hashlib), and
// one that raises for some rows. It imports the tutorial's module, as a
// user's second file would.
const digestsPy = `import hashlib

from chalk import online
from marketplace import User


@online
def email_digest(email: User.email, first: User.first_name) -> User.email_digest:
    return first[:1] + ":" + hashlib.blake2b(email.encode(), digest_size=8).hexdigest()


@online
def name_code(first: User.first_name, last: User.last_name) -> User.name_code:
    if len(first) > len(last):
        raise ValueError("first name longer than last name")
    return (first + last).swapcase()
`

// pythonRepo is a copy of the demo's repository with digestsPy and the two
// features it outputs, over data generated here; python names the
// interpreter in its fletch.yaml.
func pythonRepo(t *testing.T, python string) string {
	t.Helper()
	dir := t.TempDir()
	repo := filepath.Join(dir, "marketplace")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), repo)
	src, err := os.ReadFile(filepath.Join(repo, "marketplace.py"))
	if err != nil {
		t.Fatal(err)
	}
	withFeatures := strings.Replace(string(src), "    email: str | None\n", "    email: str | None\n    email_digest: str | None\n    name_code: str | None\n", 1)
	if withFeatures == string(src) {
		t.Fatal("marketplace.py no longer declares User.email as the test expects")
	}
	for name, text := range map[string]string{"marketplace.py": withFeatures, "digests.py": digestsPy} {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, dbPath)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %s\npython:\n  executable: %s\n  workers: 2\n", strconv.Quote(dbPath), strconv.Quote(python))
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// cpythonRows runs script in the test's CPython with rows as JSON on its
// stdin and decodes what it prints.
func cpythonRows(t *testing.T, python, script string, rows any, args ...string) []any {
	t.Helper()
	data, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{"-c", script}, args...)...)
	cmd.Stdin = strings.NewReader(string(data))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("python: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("python: %v", err)
	}
	var res []any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// queryErr runs query to its last row and returns its error, whether
// planning (GetFlightInfo) or running it (DoGet) failed.
func queryErr(ctx context.Context, cl *flightsql.Client, query string) error {
	info, err := cl.Execute(ctx, query)
	if err == nil {
		_, _, err = readAll(ctx, cl, info)
	}
	return err
}

// Python resolvers through Flight SQL: the answers are CPython's (the same
// function run apart over the reference database's rows), a row that
// raises is the query's clear error, and the rest of the repository is
// unaffected; without Python, only those features are unavailable.
func TestPythonResolverFlightSQL(t *testing.T) {
	python := pyworkertest.Python(t)
	repo := pythonRepo(t, python)
	srvAddr, _ := startServe(t, repo)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, srvAddr, mem)
	ctx := context.Background()

	// Users with an email, one twice; and users split by whether name_code
	// raises for them.
	ref := referenceRows(t, `SELECT hid, email, first_name, last_name, first_name || ' ' || last_name FROM marketplace_users WHERE email IS NOT NULL ORDER BY hid LIMIT 40`)
	var ok, raising []int
	for i, r := range ref {
		if len(r[2].(string)) > len(r[3].(string)) {
			raising = append(raising, i)
		} else {
			ok = append(ok, i)
		}
	}
	if len(ok) < 3 || len(raising) < 1 {
		t.Fatalf("the data has %d users name_code answers for and %d it raises for", len(ok), len(raising))
	}
	rows := []int{ok[0], ok[1], ok[2], ok[0]}
	var ids, plain []string
	var in [][]any
	for _, i := range rows {
		ids = append(ids, "'"+ref[i][0].(string)+"'")
		plain = append(plain, ref[i][0].(string))
		in = append(in, ref[i])
	}
	want := cpythonRows(t, python, `import hashlib, json, sys
out = []
for id, email, first, last, full in json.load(sys.stdin):
    out.append([id, first[:1] + ":" + hashlib.blake2b(email.encode(), digest_size=8).hexdigest(), (first + last).swapcase(), full])
print(json.dumps(out))`, in)
	info, err := cl.Execute(ctx, `SELECT id, email_digest, name_code, full_name FROM "user" WHERE id IN (`+strings.Join(ids, ", ")+`)`)
	if err != nil {
		t.Fatal(err)
	}
	_, got := fetch(t, ctx, cl, info)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answer\n%v\nCPython\n%v", got, want)
	}

	// A row the function raises for: the query's error says which, and why.
	bad := ref[raising[0]][0].(string)
	err = queryErr(ctx, cl, `SELECT id, name_code FROM "user" WHERE id IN (`+ids[0]+`, '`+bad+`')`)
	line := func(text string) string {
		return strconv.Itoa(strings.Count(digestsPy[:strings.Index(digestsPy, text)], "\n") + 1)
	}
	raised := "ValueError: first name longer than last name (name_code, line " + line("raise ValueError") + ")"
	wantMsg := "output name_code: Python resolver name_code raised for user.name_code in 1 of 2 rows; the first, row 1: " + raised
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != wantMsg {
		t.Errorf("a raising row: %v\nwant InvalidArgument: %s", err, wantMsg)
	}

	// The same through the Python SDK, as a user would: the native query
	// with partial answers (the raising row is null and reported by row),
	// and a prepared statement bound to a batch of rows.
	sdk := cpythonRows(t, python, `import json, sys
import pyarrow as pa
from fletch import FletchClient
addr, ids, bad = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
with FletchClient(addr) as c:
    t = c.query_bulk({"user.id": [ids[0], bad, ids[1]]}, ["name_code", "full_name"], partial=True)
    summary = json.loads(t.schema.metadata[b"fletch.summary"])
    p = c.sql('SELECT id, name_code FROM "user" WHERE id = ?', pa.table({"id": ids}))
    print(json.dumps([t.to_pylist(), summary["errors"], p.to_pylist()]))`, nil, srvAddr, strings.Join(plain, ","), bad)
	wr := func(i int) []any { return want[i].([]any) }
	wantSDK := []any{
		[]any{
			map[string]any{"name_code": wr(0)[2], "full_name": wr(0)[3]},
			map[string]any{"name_code": nil, "full_name": ref[raising[0]][4]},
			map[string]any{"name_code": wr(1)[2], "full_name": wr(1)[3]},
		},
		[]any{map[string]any{"output": "name_code", "resolver": "name_code", "kind": "invalid_input", "rows": []any{1.0}, "message": raised}},
		[]any{
			map[string]any{"id": plain[0], "name_code": wr(0)[2]},
			map[string]any{"id": plain[1], "name_code": wr(1)[2]},
			map[string]any{"id": plain[2], "name_code": wr(2)[2]},
			map[string]any{"id": plain[3], "name_code": wr(3)[2]},
		},
	}
	if !reflect.DeepEqual(sdk, wantSDK) {
		t.Errorf("through the Python SDK\n%v\nwant\n%v", sdk, wantSDK)
	}

	// Without Python the server starts, warns, and serves the rest.
	broken := pythonRepo(t, "/no/such/python3")
	brokenAddr, log := startServe(t, broken)
	if w := "level=WARN msg=\"" + filepath.Join(broken, "digests.py"); !strings.Contains(log.String(), w) || !strings.Contains(log.String(), "Python resolver email_digest runs in Python") {
		t.Errorf("serve's log without Python:\n%s", log.String())
	}
	bcl := dial(t, brokenAddr, mem)
	info, err = bcl.Execute(ctx, `SELECT full_name FROM "user" WHERE id = `+ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, got := fetch(t, ctx, bcl, info); fmt.Sprint(got) != fmt.Sprint([][]any{{want[0].([]any)[3]}}) {
		t.Errorf("full_name without Python: %v", got)
	}
	err = queryErr(ctx, bcl, `SELECT email_digest FROM "user" WHERE id = `+ids[0])
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "user.email_digest comes from the Python resolver email_digest, which runs in Python") ||
		!strings.Contains(err.Error(), "Python is not available: python3 cannot be started") || strings.Contains(err.Error(), broken) {
		t.Errorf("email_digest without Python: %v", err)
	}
}
