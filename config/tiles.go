package config

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/fletch-engine/fletch/internal/suggest"

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

// TilesConfig is `tiles:`, when the backfills of materialized features run
// inside fletch serve (docs/TILES.md "Schedules"):
//
//	tiles:
//	  backfill_schedule: "@daily"        # features without a schedule of their own
//	  schedules:
//	    user.total_spend: "0 * * * *"    # this feature's, over its definition's
type TilesConfig struct {
	// BackfillSchedule is the cron of every materialized feature whose
	// definition has no backfill_schedule; "" for none.
	BackfillSchedule string
	// Schedules are per-feature crons by qualified name (`class.feature`),
	// over the definition's; checked against the repository by
	// CheckSchedules.
	Schedules map[string]Schedule
}

// Schedule is one entry of `tiles.schedules`.
type Schedule struct {
	Cron string
	Line int // its line in the file, for errors
	Col  int
}

func (p *parser) tiles(n *yaml.Node, tc *TilesConfig) error {
	return p.mapping(n, "tiles", map[string]func(*yaml.Node) error{
		"backfill_schedule": p.cron(&tc.BackfillSchedule, "tiles.backfill_schedule"),
		"schedules": func(n *yaml.Node) error {
			if n.Kind != yaml.MappingNode {
				return p.errorf(n, "tiles.schedules must map feature names (user.total_spend) to cron schedules")
			}
			tc.Schedules = map[string]Schedule{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i], n.Content[i+1]
				if _, dup := tc.Schedules[key.Value]; dup {
					return p.errorf(key, "feature %q appears twice in tiles.schedules", key.Value)
				}
				var s string
				if err := p.cron(&s, "tiles.schedules."+key.Value)(val); err != nil {
					return err
				}
				tc.Schedules[key.Value] = Schedule{Cron: s, Line: key.Line, Col: key.Column}
			}
			return nil
		},
	})
}

// cron decodes a cron schedule as backfill_schedule takes it (five fields
// or a descriptor such as @daily).
func (p *parser) cron(dst *string, what string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		s, err := p.scalar(n)
		if err != nil {
			return err
		}
		if _, err := cron.ParseStandard(s); err != nil {
			return p.errorf(n, "%s %q is not a cron schedule (minute hour day-of-month month day-of-week, or @daily): %v", what, s, err)
		}
		*dst = s
		return nil
	}
}

// ScheduleOf is the cron a materialized feature's backfill runs on inside
// fletch serve ("" for none): tiles.schedules' entry for its qualified
// name, else its definition's backfill_schedule, else
// tiles.backfill_schedule.
func (c *Config) ScheduleOf(qualified, defined string) string {
	if s, ok := c.Tiles.Schedules[qualified]; ok {
		return s.Cron
	}
	if defined != "" {
		return defined
	}
	return c.Tiles.BackfillSchedule
}

// CheckSchedules reports the entries of tiles.schedules that name no
// materialized feature of the repository (materialized: its qualified
// names), with the nearest one.
func (c *Config) CheckSchedules(materialized []string) error {
	var errs []error
	for name, s := range c.Tiles.Schedules {
		if !slices.Contains(materialized, name) {
			errs = append(errs, fmt.Errorf("%s:%d:%d: tiles.schedules names %q, which is not a materialized windowed feature of the repository%s",
				c.Path, s.Line, s.Col, name, suggest.DidYouMean(name, materialized)))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
