package config

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/dynamodb"
	"github.com/fletch-engine/fletch/stores/guard"
	"github.com/fletch-engine/fletch/stores/memory"
	"github.com/fletch-engine/fletch/stores/offline"
	"github.com/fletch-engine/fletch/stores/pgonline"
	"github.com/fletch-engine/fletch/stores/postgres"
	"github.com/fletch-engine/fletch/stores/redis"
)

// Env is an opened configuration: the sources by name, the online store
// and the offline store's logger.
type Env struct {
	Config *Config
	// embedded answers every source name under the embedded default.
	embedded *duckdb.Source
	sources  map[string]stores.Source // as opened
	guarded  map[string]stores.Source // behind their guard, when they have one
	online   stores.OnlineStore
	guards   []*guard.Guard
	offline  *offline.Logger // nil: none configured
	closers  []interface{ Close() error }
}

// Open opens the sources and the online store cfg names. DuckDB sources
// naming the same file share one database; a Postgres source must answer
// (its pool reconnects by itself later, when the server restarts).
func Open(cfg *Config) (*Env, error) {
	ctx := context.Background()
	env := &Env{Config: cfg, sources: map[string]stores.Source{}, guarded: map[string]stores.Source{}}
	if cfg.Embedded {
		src, err := duckdb.Open(cfg.EmbeddedPath)
		if err != nil {
			return nil, fmt.Errorf("config: the embedded database: %w", err)
		}
		env.embedded = src
		env.closers = append(env.closers, src)
	}
	byPath := map[string]*duckdb.Source{}
	names := make([]string, 0, len(cfg.Sources))
	for name := range cfg.Sources {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic errors
	for _, name := range names {
		sc := cfg.Sources[name]
		switch sc.Kind {
		case "postgres":
			src, err := postgres.Open(ctx, postgres.Options{DSN: sc.DSN, MaxConns: sc.MaxConns, StatementTimeout: sc.StatementTimeout, Name: name})
			if err != nil {
				env.Close()
				return nil, fmt.Errorf("%s:%d: %w", cfg.Path, sc.Line, err)
			}
			env.sources[name] = src
			env.closers = append(env.closers, src)
		case "duckdb":
			path := sc.Path
			if path == ":memory:" {
				path = ""
			}
			src := byPath[path]
			if src == nil || path == "" {
				var err error
				if src, err = duckdb.Open(path); err != nil {
					env.Close()
					return nil, fmt.Errorf("%s:%d: source %q: %w", cfg.Path, sc.Line, name, err)
				}
				byPath[path] = src
				env.closers = append(env.closers, src)
			}
			env.sources[name] = src
		}
	}
	switch cfg.OnlineStore.Kind {
	case "memory", "":
		store := memory.New()
		env.online = store
		env.closers = append(env.closers, store)
	case "redis":
		o := cfg.OnlineStore
		store, err := redis.Open(ctx, redis.Options{Addrs: o.Addrs, Password: o.Password, DB: o.DB, Prefix: o.Prefix, PoolSize: o.PoolSize})
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("%s:%d: online store: %w", cfg.Path, o.Line, err)
		}
		env.online = store
		env.closers = append(env.closers, store)
	case "dynamodb":
		o := cfg.OnlineStore
		store, err := dynamodb.Open(ctx, dynamodb.Options{Table: o.Table, Region: o.Region, Endpoint: o.Endpoint, CreateTable: o.CreateTable})
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("%s:%d: online store: %w", cfg.Path, o.Line, err)
		}
		env.online = store
		env.closers = append(env.closers, store)
	case "postgres":
		o := cfg.OnlineStore
		store, err := pgonline.Open(ctx, pgonline.Options{DSN: o.DSN, Table: o.Table, MaxConns: o.PoolSize})
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("%s:%d: online store: %w", cfg.Path, o.Line, err)
		}
		env.online = store
		env.closers = append(env.closers, store)
	default:
		env.Close()
		return nil, fmt.Errorf("%s:%d: unknown online store kind %q", cfg.Path, cfg.OnlineStore.Line, cfg.OnlineStore.Kind)
	}
	if err := env.openOffline(ctx, byPath); err != nil {
		env.Close()
		return nil, err
	}
	env.guard()
	return env, nil
}

// guard puts the sources and the online store that configure a bulkhead
// or a breaker behind their guard.
func (e *Env) guard() {
	for name, sc := range e.Config.Sources {
		g := guard.New(guard.Options{Name: "source " + name, Where: "sources." + name,
			MaxConcurrent: sc.MaxConcurrent, MaxQueued: sc.MaxQueued, MaxPerKey: sc.MaxPerResolver, Failures: sc.Breaker.Failures, OpenFor: sc.Breaker.OpenFor})
		if g.Active() {
			e.guarded[name] = guard.Source{Source: e.sources[name], Guard: g}
			e.guards = append(e.guards, g)
		}
	}
	b := e.Config.OnlineStore.Breaker
	if g := guard.New(guard.Options{Name: "online store", Where: "online_store", Failures: b.Failures, OpenFor: b.OpenFor}); g.Active() {
		e.online = guard.OnlineStore{OnlineStore: e.online, Guard: g}
		e.guards = append(e.guards, g)
	}
}

// Guards are the bulkheads and breakers of the sources and the online
// store that have one, for metrics.
func (e *Env) Guards() []*guard.Guard { return e.guards }

// Source returns the source a resolver's `-- source: name` names.
func (e *Env) Source(name string) (stores.Source, error) {
	if e.embedded != nil {
		return e.embedded, nil
	}
	if src, ok := e.guarded[name]; ok {
		return src, nil
	}
	if src, ok := e.sources[name]; ok {
		return src, nil
	}
	names := make([]string, 0, len(e.sources))
	for n := range e.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("no source named %q in %s%s (sources: %s)", name, e.Config.Path, suggest.DidYouMean(name, names), joinQuoted(names))
}

// DuckDB returns the DuckDB source a name resolves to, for loaders that
// create and fill tables (fletch demo).
func (e *Env) DuckDB(name string) (*duckdb.Source, error) {
	if _, err := e.Source(name); err != nil {
		return nil, err
	}
	src := stores.Source(e.embedded)
	if e.embedded == nil {
		src = e.sources[name]
	}
	d, ok := src.(*duckdb.Source)
	if !ok {
		return nil, fmt.Errorf("source %q is not a DuckDB source", name)
	}
	return d, nil
}

// OnlineStore is the configured online store.
func (e *Env) OnlineStore() stores.OnlineStore { return e.online }

// OfflineLog is the offline store's logger; nil when none is configured.
func (e *Env) OfflineLog() stores.OfflineLog {
	if e.offline == nil {
		return nil // not a typed nil: callers test for none
	}
	return e.offline
}

// Close writes what the offline log holds, then closes every source and
// the online store.
func (e *Env) Close() error {
	var errs []error
	if e.offline != nil {
		errs = append(errs, e.offline.Close()) // before the database it may share with a source
		e.offline = nil
	}
	for _, c := range e.closers {
		errs = append(errs, c.Close())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// Ready pings every source and the online store that can say whether it
// is reachable (stores.Pinger), all at once, and returns what failed by
// name ("online_store" for the store); an empty map is ready. A server's
// /readyz answers it.
func (e *Env) Ready(ctx context.Context) map[string]error {
	type check struct {
		name string
		p    stores.Pinger
	}
	var checks []check
	seen := map[stores.Pinger]bool{} // DuckDB sources may share a database
	if e.embedded != nil {
		checks = append(checks, check{"embedded", e.embedded})
	}
	for name, src := range e.sources {
		if p, ok := src.(stores.Pinger); ok && !seen[p] {
			checks = append(checks, check{"source " + name, p})
			seen[p] = true
		}
	}
	if p, ok := e.online.(stores.Pinger); ok {
		checks = append(checks, check{"online_store", p})
	}
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { errs[i] = c.p.Ping(ctx) })
	}
	wg.Wait()
	failed := map[string]error{}
	for i, c := range checks {
		if errs[i] != nil {
			failed[c.name] = errs[i]
		}
	}
	return failed
}
