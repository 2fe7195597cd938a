package config

import (
	"context"
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/offline"
)

// OfflineStoreConfig is `offline_store:`; a zero Kind (no section) logs
// nothing.
type OfflineStoreConfig struct {
	Kind string // "postgres" or "duckdb"
	DSN  string // postgres
	// Path is the duckdb database file, relative to the configuration
	// file's folder; a source's file is shared with it.
	Path  string
	Table string // default offline.DefaultTable
	Queue int    // batches waiting to be written (offline.Options.Queue)
	Line  int    // where the section is, for errors
}

func (p *parser) offlineStore(n *yaml.Node, oc *OfflineStoreConfig) error {
	*oc = OfflineStoreConfig{Line: n.Line}
	var dsnAt, pathAt *yaml.Node
	if err := p.mapping(n, "offline_store", map[string]func(*yaml.Node) error{
		"kind": p.kind(&oc.Kind, "postgres", "duckdb"),
		"dsn": func(v *yaml.Node) error {
			dsnAt = v
			return p.str(&oc.DSN)(v)
		},
		"path": func(v *yaml.Node) error {
			pathAt = v
			return p.str(&oc.Path)(v)
		},
		"table": p.str(&oc.Table),
		"queue": p.integer(&oc.Queue),
	}); err != nil {
		return err
	}
	switch {
	case oc.Kind == "":
		return p.errorf(n, `offline_store has no kind ("postgres" or "duckdb")`)
	case oc.Kind == "postgres" && pathAt != nil:
		return p.errorf(pathAt, "the postgres offline store takes a dsn, not a path")
	case oc.Kind == "postgres" && oc.DSN == "":
		return p.errorf(n, "the postgres offline store has no dsn")
	case oc.Kind == "duckdb" && dsnAt != nil:
		return p.errorf(dsnAt, "the duckdb offline store takes a path, not a dsn")
	case oc.Kind == "duckdb" && (oc.Path == "" || oc.Path == ":memory:"):
		return p.errorf(n, "the duckdb offline store has no path (a database file: an in-memory log would vanish with the server)")
	}
	if oc.Kind == "duckdb" && !filepath.IsAbs(oc.Path) {
		oc.Path = filepath.Join(filepath.Dir(p.path), oc.Path)
	}
	return nil
}

// openOffline opens the offline store's logger; a DuckDB file already open
// as a source (byPath) or as the embedded database is shared.
func (e *Env) openOffline(ctx context.Context, byPath map[string]*duckdb.Source) error {
	oc := e.Config.OfflineStore
	var sink offline.Sink
	switch oc.Kind {
	case "":
		return nil
	case "postgres":
		pg, err := offline.OpenPostgres(ctx, oc.DSN, oc.Table)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", e.Config.Path, oc.Line, err)
		}
		sink = pg
	case "duckdb":
		db := byPath[oc.Path]
		if db == nil && e.embedded != nil && e.Config.EmbeddedPath == oc.Path {
			db = e.embedded
		}
		if db == nil {
			var err error
			if db, err = duckdb.Open(oc.Path); err != nil {
				return fmt.Errorf("%s:%d: offline store: %w", e.Config.Path, oc.Line, err)
			}
			e.closers = append(e.closers, db)
		}
		d, err := offline.OpenDuckDB(ctx, db.DB(), oc.Table)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", e.Config.Path, oc.Line, err)
		}
		sink = d
	}
	e.offline = offline.NewLogger(sink, offline.Options{Queue: oc.Queue})
	return nil
}
