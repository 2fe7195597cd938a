package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/dynamodb"
	"github.com/fletch-engine/fletch/stores/postgres"
	"github.com/fletch-engine/fletch/stores/redis"
)

// checkConnected is `fletch validate --connect`: it connects to the
// sources and stores cfg names and asks each source to plan its
// resolvers' queries, writing nothing anywhere (DuckDB files are opened
// read-only and never created; no table is created). It returns a line
// per thing connected to, and every problem at once (docs/CONFIG.md).
func checkConnected(ctx context.Context, repo string, g *features.Graph, cfg *config.Config) ([]string, error) {
	c := connector{ctx: ctx, repo: repo, cfg: cfg, sources: map[string]stores.Source{}, byPath: map[string]*duckdb.Source{}}
	defer c.close()
	// what each source is, by name ("" for the embedded database), in
	// the order printed
	var order []string
	what := map[string]string{}
	if cfg.Embedded {
		order, what[""] = append(order, ""), c.embedded()
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Sources)) {
		sc := cfg.Sources[name]
		w, err := c.source(name, sc)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s:%d: source %q: %w", cfg.Path, sc.Line, name, err))
			continue
		}
		order, what[name] = append(order, name), "source "+name+" ("+w+")"
	}
	// A resolver is checked against the source it reads; the embedded
	// database answers every source name.
	checked := map[string]int{}
	for _, r := range g.SQLResolvers {
		name := r.Source
		if cfg.Embedded {
			name = ""
		}
		src := c.sources[name]
		if src == nil {
			continue // not connected: said by its line or error
		}
		checked[name]++
		if err := checkResolver(ctx, src, r); err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: resolver %s (source %q): %w", r.Pos, r.Name, r.Source, err))
		}
	}
	var lines []string
	for _, name := range order {
		l := what[name]
		if c.sources[name] != nil {
			l += fmt.Sprintf(": %d SQL resolver(s) checked", checked[name])
		}
		lines = append(lines, l)
	}
	lines = append(lines, c.onlineStore()...)
	lines = append(lines, c.offlineStore()...)
	return lines, errors.Join(c.errs...)
}

// connector holds what checkConnected opened, by source name ("" for the
// embedded database), and the problems found.
type connector struct {
	ctx     context.Context
	repo    string
	cfg     *config.Config
	sources map[string]stores.Source
	byPath  map[string]*duckdb.Source // DuckDB files, opened once
	closers []interface{ Close() error }
	errs    []error
}

func (c *connector) close() {
	for _, cl := range c.closers {
		cl.Close()
	}
}

// embedded opens the database fletch serve makes for a repository
// without sources, when it exists: with none yet there is nothing to
// check the resolvers against, which is no error.
func (c *connector) embedded() string {
	path := embeddedPath(c.repo)
	if _, err := os.Stat(path); err != nil {
		return fmt.Sprintf("embedded database %s: not made yet (fletch serve makes it), so the SQL resolvers are not checked", shownPath(path))
	}
	src, err := c.duckdb(path)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("the embedded database: %w", err))
		return "embedded database " + shownPath(path) + ": not opened"
	}
	c.sources[""] = src
	return fmt.Sprintf("embedded database %s (duckdb, read-only)", shownPath(path))
}

// source connects to one source of fletch.yaml and says what it is.
func (c *connector) source(name string, sc config.SourceConfig) (string, error) {
	switch sc.Kind {
	case "postgres":
		src, err := postgres.Open(c.ctx, postgres.Options{DSN: sc.DSN, MaxConns: 1, StatementTimeout: sc.StatementTimeout, Name: name})
		if err != nil {
			return "", err
		}
		c.closers = append(c.closers, src)
		c.sources[name] = src
		return "postgres, connected", nil
	case "duckdb":
		if sc.Path == "" || sc.Path == ":memory:" {
			return "duckdb in memory: empty at every start, nothing to check its resolvers against", nil
		}
		if _, err := os.Stat(sc.Path); errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("the DuckDB file %s does not exist: serve would start an empty database there", shownPath(sc.Path))
		}
		src, err := c.duckdb(sc.Path)
		if err != nil {
			return "", err
		}
		c.sources[name] = src
		return "duckdb " + shownPath(sc.Path) + ", read-only", nil
	}
	return "", fmt.Errorf("unknown kind %q", sc.Kind)
}

// duckdb opens an existing DuckDB file read-only, once per file.
func (c *connector) duckdb(path string) (*duckdb.Source, error) {
	if src := c.byPath[path]; src != nil {
		return src, nil
	}
	src, err := duckdb.OpenReadOnly(path)
	if err != nil {
		return nil, inUse(err, c.repo, "stop that process first, or validate without --connect")
	}
	c.byPath[path] = src
	c.closers = append(c.closers, src)
	return src, nil
}

// onlineStore reaches the online store without writing to it, and says
// what it found.
func (c *connector) onlineStore() []string {
	o := c.cfg.OnlineStore
	var err error
	what := ""
	switch o.Kind {
	case "memory", "":
		return nil
	case "redis":
		err = redis.Reach(c.ctx, redis.Options{Addrs: o.Addrs, Password: o.Password, DB: o.DB})
		what = "redis: PING answered"
	case "dynamodb":
		var store *dynamodb.Store
		store, err = dynamodb.Open(c.ctx, dynamodb.Options{Table: o.Table, Region: o.Region, Endpoint: o.Endpoint})
		var missing *dynamodb.NoTableError
		switch {
		case err == nil:
			store.Close()
			what = "dynamodb: table " + o.Table + " found"
		case errors.As(err, &missing) && o.CreateTable:
			err, what = nil, "dynamodb: table "+o.Table+" not made yet; serve makes it (create_table)"
		}
	case "postgres":
		err = pingPostgres(c.ctx, o.DSN)
		what = "postgres: connected; its tables are not checked (serve makes them when missing)"
	}
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s:%d: online store: %w", c.cfg.Path, o.Line, err))
		return nil
	}
	return []string{"online store " + what}
}

// offlineStore reaches the offline store without making its table or
// file, and says what it found.
func (c *connector) offlineStore() []string {
	o := c.cfg.OfflineStore
	var err error
	what := ""
	switch o.Kind {
	case "":
		return nil
	case "postgres":
		err = pingPostgres(c.ctx, o.DSN)
		what = "postgres: connected; its table is not checked (serve makes it when missing)"
	case "duckdb":
		what = "duckdb " + shownPath(o.Path) + ": "
		if _, statErr := os.Stat(o.Path); errors.Is(statErr, os.ErrNotExist) {
			what += "not made yet; serve makes it"
		} else if _, err = c.duckdb(o.Path); err == nil {
			what += "opened read-only; its table is not checked (serve makes it when missing)"
		}
	}
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s:%d: offline store: %w", c.cfg.Path, o.Line, err))
		return nil
	}
	return []string{"offline store " + what}
}

// pingPostgres connects to the database dsn names and closes the
// connection: a store's reachability, without the tables its Open makes.
func pingPostgres(ctx context.Context, dsn string) error {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return errors.New("the dsn is not a valid connection string or URL")
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	return conn.Close(ctx)
}

// checkResolver asks src to plan r's query and answer no rows: its
// parameters bound as a query would bind them (no keys, the time now),
// the columns it fills features with asked for in the features' types.
// What the source refuses, or a mapped column its answer lacks, is the
// error.
func checkResolver(ctx context.Context, src stores.Source, r *features.SQLResolver) error {
	mem := memory.DefaultAllocator
	req := stores.FetchRequest{SQL: "SELECT * FROM (\n" + stores.TrimStatement(r.Query) + "\n) AS _r LIMIT 0", Timeout: r.Timeout, Resolver: r.Name}
	for _, p := range r.Params {
		if p.Now {
			req.Params = append(req.Params, stores.ParamValue{Time: time.Now()})
			continue
		}
		b := array.NewBuilder(mem, p.Feature.Type.Arrow())
		none := b.NewArray()
		b.Release()
		defer none.Release()
		req.Params = append(req.Params, stores.ParamValue{Values: none})
	}
	fields := make([]arrow.Field, len(r.Columns))
	for i, cm := range r.Columns {
		fields[i] = arrow.Field{Name: cm.Column, Type: cm.Feature.Type.Arrow(), Nullable: true}
	}
	req.Schema = arrow.NewSchema(fields, nil)
	rec, err := src.Fetch(ctx, mem, req)
	if err != nil {
		return fmt.Errorf("the source refuses the query: %s", sourceMessage(err))
	}
	defer rec.Release()
	answer := make([]string, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		answer[i] = f.Name
	}
	var errs []error
	for _, cm := range r.Columns {
		if len(rec.Schema().FieldIndices(cm.Column)) == 0 {
			errs = append(errs, fmt.Errorf("the source answers no column %s, which fills %s%s (its columns: %s)",
				cm.Column, cm.Feature.QualifiedName(), nearestColumn(cm.Column, answer), strings.Join(answer, ", ")))
		}
	}
	return errors.Join(errs...)
}

// nearestColumn names the answer's column a mapped one most likely is:
// a near name, or one that computes it under the source's own name
// (DuckDB names `balance::double` "CAST(balance AS DOUBLE)", where
// Postgres and the resolver's reader say "balance").
func nearestColumn(name string, answer []string) string {
	if s := suggest.DidYouMean(name, answer); s != "" {
		return s
	}
	for _, a := range answer {
		if strings.Contains(a, name) {
			return fmt.Sprintf(" (did you mean the column %s? name it: AS %s)", a, name)
		}
	}
	return ""
}

// sourceMessage is a source's error on one line, without DuckDB's excerpt
// of the query ("LINE 1: SELECT * FROM (..."), which quotes the wrapper
// above rather than the resolver's file.
func sourceMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\n\nLINE "); i >= 0 {
		msg = msg[:i]
	}
	return strings.Join(strings.Fields(msg), " ")
}
