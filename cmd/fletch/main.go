// Command fletch is the feature engine's command line: it serves a feature
// repository over Arrow Flight SQL, runs the marketplace demo on the
// embedded default, queries features (from a server or in-process), and
// shows, lists and checks what a repository defines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/tiles"
)

const defaultListen = "127.0.0.1:8815"

const usage = `fletch — a feature engine for real-time machine learning, served over Arrow Flight SQL

Usage:
  fletch demo     [--listen ADDR] [--dir DIR] [--http-listen ADDR]
        generate the marketplace example into an embedded DuckDB and serve it,
        with the web console on --http-listen (default 127.0.0.1:8816)
  fletch serve    --repo DIR [--config FILE] [--listen ADDR] [--grace DURATION]
                  [--http-listen ADDR] [--log-format text|json] [--log-level LEVEL]
        serve a feature repository over Flight SQL; on SIGTERM, calls in flight
        may finish for --grace (default 30s), then write-backs and logs are flushed;
        --http-listen serves the web console (docs/CONSOLE.md), /metrics, /healthz
        and /readyz (docs/OPERATIONS.md)
  fletch console  [--repo DIR] [--config FILE] [--listen ADDR]
        the web console of a repository on disk, without a server: catalogue,
        lineage and queries in-process (default 127.0.0.1:8816; docs/CONSOLE.md)
  fletch query    --in class.feature=value ... [--out NAME ...] [--now TIME] [--json]
                  [--server ADDR | --repo DIR [--config FILE]]
        query features (default: the server at ` + defaultListen + `)
  fletch plan     --in class.feature=value ... [--out NAME ...] [--repo DIR] [--format text|mermaid]
        show the plan a query would run
  fletch features [--repo DIR]
        list the feature classes and features of a repository
  fletch validate [--repo DIR] [--config FILE] [--strict] [--connect]
        check a repository's definitions and fletch.yaml, connecting to nothing;
        errors and warnings as file:line:col (--strict: warnings fail too);
        --connect also connects to the sources and stores, read-only, and has
        each source plan its SQL resolvers' queries (docs/CONFIG.md)
  fletch token    new --name NAME --scope SCOPE ... | hash [TOKEN]
        make an access token and its fletch.yaml entry (docs/AUTH.md)
  fletch aggregate backfill --repo DIR [--config FILE] [--feature CLASS.FEATURE ...] [--start T] [--end T]
  fletch aggregate status   --repo DIR [--config FILE]
        materialize aggregation tiles of windowed features, and show them (docs/TILES.md)

A repository is a folder of @features .py files and .sql resolvers, with an
optional fletch.yaml (sources, online store, listen address; docs/CONFIG.md).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fletch:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "console":
		return cmdConsole(ctx, rest, stdout, stderr)
	case "query":
		return cmdQuery(ctx, rest, stdout, stderr)
	case "plan":
		return cmdPlan(rest, stdout, stderr)
	case "features":
		return cmdFeatures(rest, stdout, stderr)
	case "validate":
		return cmdValidate(ctx, rest, stdout, stderr)
	case "token":
		return cmdToken(rest, os.Stdin, stdout, stderr)
	case "aggregate":
		return cmdAggregate(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	commands := []string{"demo", "serve", "console", "query", "plan", "features", "validate", "token", "aggregate", "help"}
	return fmt.Errorf("unknown command %q%s\n\n%s", cmd, suggest.DidYouMean(cmd, commands), usage)
}

func cmdPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ins, outs multi
	fs.Var(&ins, "in", "an input: class.feature=value")
	fs.Var(&outs, "out", "an output (repeatable; default: every feature of the class)")
	repo := fs.String("repo", ".", "feature repository")
	cfgPath := fs.String("config", "", "fletch.yaml (default: the repository's, else the embedded default): its python: section")
	format := fs.String("format", "text", "text or mermaid")
	sqlText := fs.String("sql", "", "a SQL query to plan instead of --in/--out (SQL beyond a lookup: which part is feature computation and which is SQL over its result)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Planning reads definitions only: no source is opened, nothing is
	// written into the repository, and a served repository plans too. A
	// Python resolver's feature is planned only where its Python runs.
	g, err := features.Load(*repo)
	if err != nil {
		return err
	}
	cfg, err := config.Find(*repo, *cfgPath)
	if err != nil {
		return err
	}
	engine := planner.NewEngine(g, nil, nil, planner.WithPython(pythonConfig(cfg)))
	defer engine.Close()
	var p *planner.Plan
	if *sqlText != "" {
		st, rel, err := sql.ParseQuery(g, *sqlText)
		if err != nil {
			return err
		}
		if rel != nil {
			if *format != "text" {
				return fmt.Errorf("--format %q: SQL over features is explained as text", *format)
			}
			re, err := relational.New(engine, nil)
			if err != nil {
				return err
			}
			defer re.Close()
			q, err := re.Prepare(context.Background(), rel)
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, q.Explain())
			return nil
		}
		if p, err = engine.Prepare(st); err != nil {
			return err
		}
	} else {
		req, err := parseRequest(ins, outs, "")
		if err != nil {
			return err
		}
		if p, err = req.prepare(engine); err != nil {
			return err
		}
	}
	switch *format {
	case "text":
		fmt.Fprint(stdout, p.Explain())
	case "mermaid":
		fmt.Fprint(stdout, p.Graph())
	default:
		return fmt.Errorf("--format %q: use text or mermaid", *format)
	}
	return nil
}

func cmdFeatures(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("features", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	server := fs.String("server", "", "also print how many values of each feature with bounds this running server found outside them")
	token := fs.String("token", os.Getenv("FLETCH_TOKEN"), "with --server: the token to send (default $FLETCH_TOKEN)")
	useTLS := fs.Bool("tls", false, "with --server: connect with TLS")
	caFile := fs.String("ca", "", "with --tls: the PEM certificate(s) to trust instead of the system's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	g, err := features.Load(*repo)
	if err != nil {
		return err
	}
	var counts []planner.ValidationCount
	if *server != "" {
		creds, err := transportCredentials(*useTLS, *caFile)
		if err != nil {
			return err
		}
		if counts, err = validationCounts(context.Background(), *server, creds, *token); err != nil {
			return err
		}
	}
	defer printValidations(stdout, g, counts, *server)
	classes := append([]*features.Class{}, g.Classes...)
	sort.Slice(classes, func(i, j int) bool { return classes[i].Table < classes[j].Table })
	for _, c := range classes {
		fmt.Fprintf(stdout, "%s (%s)\n", c.Table, c.Pos)
		for _, f := range c.Features {
			if f.Window != nil {
				continue
			}
			fmt.Fprintf(stdout, "  %-28s %-22s %s\n", f.Name, describeType(f), describeSource(g, f))
		}
	}
	return nil
}

func describeType(f *features.Feature) string {
	switch f.Kind {
	case features.HasOne:
		return f.Relation.To.Name
	case features.HasMany:
		return "DataFrame[" + f.Relation.To.Name + "]"
	case features.WindowedGroup:
		var ws []string
		for _, w := range f.Windows {
			ws = append(ws, w.Window.Label)
		}
		return "Windowed[" + f.Windows[0].Type.String() + "] " + strings.Join(ws, ",")
	}
	s := f.Type.String()
	if f.Primary {
		s += " (primary)"
	}
	return s
}

func describeSource(g *features.Graph, f *features.Feature) string {
	for _, r := range g.PyResolvers {
		for _, out := range r.Outputs {
			if out == f {
				return fmt.Sprintf("<- %s() [%s: %s]", r.Name, r.Mode, r.Why)
			}
		}
	}
	switch {
	case f.Kind == features.HasOne || f.Kind == features.HasMany:
		return fmt.Sprintf("%s.%s = %s.%s", f.Relation.From.Table, f.Relation.FromKey.Name, f.Relation.To.Table, f.Relation.ToKey.Name)
	case f.Kind == features.WindowedGroup:
		return f.Windows[0].Expr.String()
	case f.Expr != nil:
		return "= " + f.Expr.String()
	}
	for _, r := range g.SQLResolvers {
		for _, cm := range r.Columns {
			if cm.Feature == f {
				return "<- " + r.Name + "." + cm.Column
			}
		}
	}
	return ""
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	cfgPath := fs.String("config", "", "fletch.yaml (default: the repository's, else the embedded default)")
	strict := fs.Bool("strict", false, "fail on warnings too")
	connect := fs.Bool("connect", false, "also connect to the sources and stores fletch.yaml names, read-only, and have each source plan its resolvers' queries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	g, err := features.Load(*repo)
	if g != nil {
		// printed even when a definition fails: what validate finds is
		// said at once, not one fix at a time
		for _, w := range g.Warnings {
			fmt.Fprintf(stderr, "warning: %v\n", w)
		}
	}
	if err != nil {
		_, cfgErr := config.Find(*repo, *cfgPath)
		return errors.Join(err, cfgErr)
	}
	if *strict && len(g.Warnings) > 0 {
		return fmt.Errorf("%d warning(s), and --strict", len(g.Warnings))
	}
	// fletch.yaml as serve reads it (without connecting to anything), and
	// the sources the resolvers name.
	cfg, err := config.Find(*repo, *cfgPath)
	if err != nil {
		return err
	}
	if err := errors.Join(checkSources(g, cfg), checkSchedules(g, cfg)); err != nil {
		return err
	}
	// Plan every feature of every class: binding finds what loading cannot
	// (unknown functions, type mismatches, features nothing provides).
	e := planner.NewEngine(g, nil, nil, planner.WithPython(pythonConfig(cfg)))
	defer e.Close()
	var errs []error
	n := 0
	for _, c := range g.Classes {
		for _, f := range c.Features {
			if f.Kind != features.Scalar {
				continue
			}
			n++
			st, err := statement.New(c, keyInputs(c), []statement.Output{{Expr: &expr.Ref{Path: []string{f.Name}, At: f.Pos}}})
			if err == nil {
				_, err = e.Prepare(st)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.QualifiedName(), err))
			}
		}
	}
	// Materialized features: their tiles must be computable at the source
	// (docs/TILES.md), or backfills and materialized queries would fail.
	for _, group := range tiles.Materialized(g) {
		if _, err := tiles.SpecFor(g, group); err != nil {
			errs = append(errs, err)
		}
	}
	var connected []string
	if *connect {
		lines, err := checkConnected(ctx, *repo, g, cfg)
		connected, errs = lines, append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %d feature classes, %d features, %d SQL resolvers, %d Python resolvers\n", len(g.Classes), n, len(g.SQLResolvers), len(g.PyResolvers))
	for _, r := range g.PyResolvers {
		fmt.Fprintf(stdout, "  python resolver %s: %s (%s)\n", r.Name, r.Mode, r.Why)
	}
	for _, l := range connected {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	return nil
}

// keyInputs are the input columns that name rows of c: its primary key,
// or the features a derived primary key is computed from.
func keyInputs(c *features.Class) []arrow.Field {
	primary, parts := statement.KeyColumns(c)
	if primary == nil {
		return nil
	}
	if len(parts) == 0 {
		parts = append(parts, primary)
	}
	fields := make([]arrow.Field, len(parts))
	for i, f := range parts {
		fields[i] = arrow.Field{Name: f.Name, Type: f.Type.Arrow(), Nullable: true}
	}
	return fields
}

// checkSources reports the resolvers whose `-- source:` names no source of
// cfg (the embedded default answers every name).
func checkSources(g *features.Graph, cfg *config.Config) error {
	if cfg.Embedded {
		return nil
	}
	names := make([]string, 0, len(cfg.Sources))
	for n := range cfg.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, r := range g.SQLResolvers {
		if _, ok := cfg.Sources[r.Source]; !ok {
			errs = append(errs, fmt.Errorf("%s: resolver %s reads source %q, which %s does not define (sources: %s)%s",
				r.Pos, r.Name, r.Source, cfg.Path, strings.Join(names, ", "), suggest.DidYouMean(r.Source, names)))
		}
	}
	return errors.Join(errs...)
}
