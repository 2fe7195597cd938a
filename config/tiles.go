package config

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/postgres"
)

// TileDB opens the database aggregation tiles live in (docs/TILES.md):
// the offline store's (`offline_store:`), else the embedded database,
// else a DuckDB file at fallback (<repo>/.fletch/tiles.duckdb). A database
// the environment already has open is shared; what TileDB opens closes
// with the environment.
func (e *Env) TileDB(ctx context.Context, fallback string) (stores.Source, *sql.DB, error) {
	oc := e.Config.OfflineStore
	switch {
	case oc.Kind == "postgres":
		src, err := postgres.Open(ctx, postgres.Options{DSN: oc.DSN, Name: "offline store"})
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: offline store: %w", e.Config.Path, oc.Line, err)
		}
		cfg, err := pgx.ParseConfig(oc.DSN)
		if err != nil {
			src.Close()
			return nil, nil, fmt.Errorf("%s:%d: offline store: the dsn is not a valid connection string", e.Config.Path, oc.Line)
		}
		db := stdlib.OpenDB(*cfg)
		e.closers = append(e.closers, src, db)
		return src, db, nil
	case oc.Kind == "duckdb":
		return e.duckDBAt(oc.Path)
	case e.embedded != nil:
		return e.embedded, e.embedded.DB(), nil
	}
	return e.duckDBAt(fallback)
}

// duckDBAt is the DuckDB database at path: a source's (or the embedded
// one) when open already, else opened.
func (e *Env) duckDBAt(path string) (stores.Source, *sql.DB, error) {
	if e.embedded != nil && e.Config.EmbeddedPath == path {
		return e.embedded, e.embedded.DB(), nil
	}
	for name, sc := range e.Config.Sources {
		if sc.Kind == "duckdb" && sc.Path == path {
			src := e.sources[name].(*duckdb.Source)
			return src, src.DB(), nil
		}
	}
	src, err := duckdb.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tile store %s: %w", path, err)
	}
	e.closers = append(e.closers, src)
	return src, src.DB(), nil
}
