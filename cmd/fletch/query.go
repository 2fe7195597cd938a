package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/features/pyload"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// request is a CLI query: its inputs (`--in class.feature=value`, repeated
// for several rows) and outputs.
type request struct {
	class   string
	inputs  []inputColumn
	outputs []string
	now     time.Time
	// materialized asks for use_materialized_offline_query.
	materialized bool
	// served asks for the values served at now, from the offline store
	// (recompute_features=False).
	served bool
}

type inputColumn struct {
	feature string
	values  []string
}

func parseRequest(ins, outs []string, now string) (*request, error) {
	if len(ins) == 0 {
		return nil, errors.New("give at least one input: --in class.feature=value (e.g. --in user.id=50)")
	}
	r := &request{}
	for _, in := range ins {
		name, value, ok := strings.Cut(in, "=")
		class, feat, dotted := strings.Cut(name, ".")
		if !ok || !dotted || class == "" || feat == "" {
			return nil, fmt.Errorf("--in %q: expected class.feature=value, e.g. user.id=50", in)
		}
		if r.class == "" {
			r.class = class
		} else if r.class != class {
			return nil, fmt.Errorf("--in %q: all inputs must be of one class (%s)", in, r.class)
		}
		found := false
		for i := range r.inputs {
			if r.inputs[i].feature == feat {
				r.inputs[i].values = append(r.inputs[i].values, value)
				found = true
			}
		}
		if !found {
			r.inputs = append(r.inputs, inputColumn{feature: feat, values: []string{value}})
		}
	}
	for _, c := range r.inputs[1:] {
		if len(c.values) != len(r.inputs[0].values) {
			return nil, fmt.Errorf("--in %s.%s is given %d times but %s.%s %d times: give each input once per row", r.class, c.feature, len(c.values), r.class, r.inputs[0].feature, len(r.inputs[0].values))
		}
	}
	for _, o := range outs {
		for _, part := range strings.Split(o, ",") {
			if part = strings.TrimSpace(part); part != "" {
				r.outputs = append(r.outputs, part)
			}
		}
	}
	if now != "" {
		t, err := parseTime(now)
		if err != nil {
			return nil, fmt.Errorf("--now %q: %v", now, err)
		}
		r.now = t
	}
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("expected a time like 2024-06-01T12:00:00Z or 2024-06-01")
}

// inProcess runs the request on an engine in this process, with per-cell
// hit flags.
func (r *request) inProcess(ctx context.Context, e *planner.Engine) (*planner.Result, error) {
	inputs := r.inputRecord(memory.DefaultAllocator)
	defer inputs.Release()
	st, err := r.statement(e.Graph(), inputs.Schema())
	if err != nil {
		return nil, err
	}
	p, err := e.Prepare(st)
	if err != nil {
		return nil, err
	}
	in, err := st.BindInputs(ctx, memory.DefaultAllocator, inputs)
	if err != nil {
		return nil, err
	}
	defer in.Release()
	return p.Run(ctx, in, planner.RunOptions{Now: r.now, Meta: true, Materialized: st.Options.Materialized, AlignWindows: st.Options.AlignWindows,
		FromLog: st.Options.FromLog, Recompute: st.Options.Recompute})
}

// statement is the request read as a server reads its native query, so
// that the CLI and a server answer one request alike.
func (r *request) statement(g *features.Graph, inputs *arrow.Schema) (*statement.Statement, error) {
	cmd, err := r.command()
	if err != nil {
		return nil, err
	}
	return native.NewReader(g, pythonExprs(g), 1, 1<<20).Read(cmd, inputs)
}

// pythonExprs reads the `_` expressions of native queries with the feature
// loader's own parser.
func pythonExprs(g *features.Graph) native.Expressions {
	return func(c *features.Class, src string) (expr.Node, error) { return pyload.Expr(g, c, src) }
}

// command is the request as a native feature query (docs/NATIVE.md), with
// per-cell hit flags.
func (r *request) command() ([]byte, error) {
	q := native.Query{Class: r.class, Meta: true}
	if r.materialized {
		q.PlannerOptions = map[string]any{"use_materialized_offline_query": true}
	}
	if r.served {
		q.RecomputeFeatures = false
	}
	for _, o := range r.outputs {
		q.Outputs = append(q.Outputs, strings.TrimPrefix(o, r.class+"."))
	}
	if !r.now.IsZero() {
		q.Now = r.now.Format(time.RFC3339Nano)
	}
	return json.Marshal(native.Command{Query: &q})
}

// inputRecord is the request's input rows: one string column per input
// feature (the server converts them to the features' types).
func (r *request) inputRecord(mem memory.Allocator) arrow.RecordBatch {
	var fields []arrow.Field
	var cols []arrow.Array
	for _, in := range r.inputs {
		b := array.NewStringBuilder(mem)
		b.AppendValues(in.values, nil)
		cols = append(cols, b.NewArray())
		b.Release()
		fields = append(fields, arrow.Field{Name: in.feature, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(r.inputs[0].values)))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// remote runs the request against a fletch server with one native query
// (a DoExchange): the features and whether each came from the online store.
func (r *request) remote(ctx context.Context, addr string, creds credentials.TransportCredentials, token string) (rec arrow.RecordBatch, hits []arrow.Array, err error) {
	cmd, err := r.command()
	if err != nil {
		return nil, nil, err
	}
	cl, err := arrowflight.NewClientWithMiddleware(addr, nil, nil, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.DoExchange(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", addr, err)
	}
	mem := memory.DefaultAllocator
	in := r.inputRecord(mem)
	defer in.Release()
	w := arrowflight.NewRecordWriter(stream, ipc.WithSchema(in.Schema()))
	w.SetFlightDescriptor(&arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: cmd})
	if err := w.Write(in); err != nil {
		return nil, nil, fmt.Errorf("%s: sending the inputs: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, nil, err
	}
	rdr, err := arrowflight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer rdr.Release()
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := rdr.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", addr, err)
	}
	all, err := operators.Concat(mem, rdr.Schema(), recs)
	if err != nil {
		return nil, nil, err
	}
	defer all.Release()
	return splitHits(all)
}

// splitHits separates an answer with meta into the outputs and, per output,
// its hit column (named output + flight.HitSuffix, after all the outputs).
func splitHits(all arrow.RecordBatch) (arrow.RecordBatch, []arrow.Array, error) {
	n := int(all.NumCols()) / 2
	if int(all.NumCols()) != 2*n {
		return nil, nil, fmt.Errorf("the server answered %d columns, expected each output and its hit flag", all.NumCols())
	}
	hits := make([]arrow.Array, n)
	for i := range n {
		if all.Schema().Field(n+i).Name != all.Schema().Field(i).Name+flight.HitSuffix {
			return nil, nil, fmt.Errorf("the server answered column %q where %q was expected", all.Schema().Field(n+i).Name, all.Schema().Field(i).Name+flight.HitSuffix)
		}
		hits[i] = all.Column(n + i)
		hits[i].Retain()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(all.Schema().Fields()[:n], nil), all.Columns()[:n], all.NumRows())
	return rec, hits, nil
}

// printResult writes rec as the seeds' result table (or JSON): one table per
// input row, features sorted by name, has-many results as sub-tables. hits,
// when known, has one boolean array per column: the Hit? column.
func printResult(w io.Writer, class string, rec arrow.RecordBatch, hits []arrow.Array, asJSON bool) error {
	if asJSON {
		rows := make([]map[string]any, rec.NumRows())
		for i := range rows {
			rows[i] = map[string]any{}
			for j, f := range rec.Schema().Fields() {
				rows[i][class+"."+f.Name] = jsonValue(rec.Column(j), i)
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(rows) == 1 {
			return enc.Encode(rows[0])
		}
		return enc.Encode(rows)
	}
	fields := rec.Schema().Fields()
	order := make([]int, len(fields))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return fields[order[a]].Name < fields[order[b]].Name })
	for row := 0; row < int(rec.NumRows()); row++ {
		if rec.NumRows() > 1 {
			fmt.Fprintf(w, "\nRow %d\n", row+1)
		}
		width := len("Name")
		for _, f := range fields {
			width = max(width, len(class)+1+len(f.Name))
		}
		fmt.Fprintf(w, "%-*s  %-4s  %s\n", width, "Name", "Hit?", "Value")
		fmt.Fprintln(w, strings.Repeat("─", width+30))
		var subtables []int
		for _, j := range order {
			if _, ok := fields[j].Type.(*arrow.ListType); ok && isStructList(fields[j].Type) {
				subtables = append(subtables, j)
				continue
			}
			fmt.Fprintf(w, "%-*s  %-4s  %s\n", width, class+"."+fields[j].Name, hitMark(hits, j, row), formatValue(rec.Column(j), row))
		}
		for _, j := range subtables {
			printSubtable(w, class+"."+fields[j].Name, rec.Column(j).(*array.List), row)
		}
	}
	return nil
}

// hitMark is the Hit? cell: "yes" for a value served from the online
// store, "" when it was computed or the server did not say.
func hitMark(hits []arrow.Array, col, row int) string {
	if hits == nil {
		return ""
	}
	if hits[col].(*array.Boolean).Value(row) {
		return "yes"
	}
	return ""
}

func isStructList(dt arrow.DataType) bool {
	l, ok := dt.(*arrow.ListType)
	if !ok {
		return false
	}
	_, ok = l.Elem().(*arrow.StructType)
	return ok
}

func printSubtable(w io.Writer, name string, list *array.List, row int) {
	if list.IsNull(row) {
		fmt.Fprintf(w, "\n%s: null\n", name)
		return
	}
	start, end := list.ValueOffsets(row)
	structs := list.ListValues().(*array.Struct)
	st := structs.DataType().(*arrow.StructType)
	fmt.Fprintf(w, "\n%s (%d rows)\n", name, end-start)
	cells := make([][]string, 0, end-start+1)
	header := make([]string, st.NumFields())
	for i, f := range st.Fields() {
		header[i] = f.Name
	}
	cells = append(cells, header)
	for r := start; r < end; r++ {
		line := make([]string, st.NumFields())
		for i := range line {
			line[i] = formatValue(structs.Field(i), int(r))
		}
		cells = append(cells, line)
	}
	widths := make([]int, len(header))
	for _, line := range cells {
		for i, c := range line {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for k, line := range cells {
		parts := make([]string, len(line))
		for i, c := range line {
			parts[i] = c + strings.Repeat(" ", widths[i]-len([]rune(c)))
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, "  "), " "))
		if k == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("─", total))
		}
	}
}

// formatValue prints a cell as the seeds do: strings quoted, floats in
// their shortest exact form, null as null.
func formatValue(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch a := a.(type) {
	case *array.String:
		return strconv.Quote(a.Value(i))
	case *array.Float64:
		return functions.PyFloat(a.Value(i))
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	}
	return a.ValueStr(i)
}

func jsonValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Float64:
		v := a.Value(i)
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return functions.PyFloat(v)
		}
		return v
	case *array.Boolean:
		return a.Value(i)
	case *array.List:
		start, end := a.ValueOffsets(i)
		vals := a.ListValues()
		out := make([]any, 0, end-start)
		for r := start; r < end; r++ {
			out = append(out, jsonValue(vals, int(r)))
		}
		return out
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := map[string]any{}
		for k, f := range st.Fields() {
			m[f.Name] = jsonValue(a.Field(k), i)
		}
		return m
	}
	return formatValue(a, i)
}

func cmdQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ins, outs multi
	fs.Var(&ins, "in", "an input: class.feature=value (repeat for several inputs or rows)")
	fs.Var(&outs, "out", "an output feature, relation or window (repeatable; default: every feature of the class)")
	now := fs.String("now", "", "evaluate at this time (RFC 3339); default: now")
	materialized := fs.Bool("materialized", false, "answer materialized windowed features from aggregation tiles (use_materialized_offline_query, docs/TILES.md)")
	served := fs.Bool("served", false, "answer the values served at --now, read from the offline store instead of recomputed (recompute_features=False, docs/STORES.md)")
	asJSON := fs.Bool("json", false, "print JSON")
	server := fs.String("server", "", "fletch server address (default "+defaultListen+" unless --repo is given)")
	repo := fs.String("repo", "", "run in-process on this feature repository instead of a server")
	config := fs.String("config", "", "fletch.yaml for --repo (default: the repository's, else the embedded default)")
	token := fs.String("token", os.Getenv("FLETCH_TOKEN"), "the token to send (default $FLETCH_TOKEN), when the server has auth")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	caFile := fs.String("ca", "", "with --tls: the PEM certificate(s) to trust instead of the system's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	req, err := parseRequest(ins, outs, *now)
	if err != nil {
		return err
	}
	req.materialized, req.served = *materialized, *served
	var rec arrow.RecordBatch
	var hits []arrow.Array
	if *repo != "" && *server == "" {
		env, err := openRepo(*repo, *config, "")
		if err != nil {
			return inUse(err, *repo, "query that server with --server ADDR (default "+defaultListen+") instead of --repo, or stop it")
		}
		defer env.Close()
		if c := env.engine.Graph().Class(req.class); c != nil && len(req.outputs) == 0 {
			fmt.Fprintf(stderr, "Using '--out=%s' (every feature of %s)\n", c.Table, c.Name)
		}
		res, err := req.inProcess(ctx, env.engine)
		if err != nil {
			return err
		}
		defer res.Release()
		rec, hits = res.Record, res.Hits
		rec.Retain()
	} else {
		addr := *server
		if addr == "" {
			addr = defaultListen
		}
		if len(req.outputs) == 0 {
			fmt.Fprintf(stderr, "Using '--out=%s' (every feature of the class)\n", req.class)
		}
		creds, err := transportCredentials(*useTLS, *caFile)
		if err != nil {
			return err
		}
		rec, hits, err = req.remote(ctx, addr, creds, *token)
		if err != nil {
			return err
		}
		defer func() {
			for _, h := range hits {
				h.Release()
			}
		}()
	}
	defer rec.Release()
	return printResult(stdout, req.class, rec, hits, *asJSON)
}

// transportCredentials are plaintext, or TLS trusting caFile (or the
// system's roots).
func transportCredentials(useTLS bool, caFile string) (credentials.TransportCredentials, error) {
	if !useTLS {
		if caFile != "" {
			return nil, errors.New("--ca needs --tls")
		}
		return insecure.NewCredentials(), nil
	}
	if caFile == "" {
		return credentials.NewClientTLSFromCert(nil, ""), nil
	}
	return credentials.NewClientTLSFromFile(caFile, "")
}

// inUse explains err when it is a DuckDB file of the repository held by
// another process, a `fletch serve` of it most likely: DuckDB lets one
// process at a time open a file. advice says what to do instead.
func inUse(err error, repo, advice string) error {
	var locked *duckdb.LockedError
	if !errors.As(err, &locked) {
		return err
	}
	return fmt.Errorf("the repository %s is in use: its database %s is open in another process (a fletch serve of it?), and DuckDB lets one process at a time open a file; %s", repo, shownPath(locked.Path), advice)
}

// shownPath is path relative to the working directory when it is below
// it: the path a user typed, not the machine's.
func shownPath(path string) string {
	if rel, err := filepath.Rel(".", path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
