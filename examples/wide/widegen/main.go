// Command widegen writes the wide feature repository of examples/wide and
// its data, warms a fletch server's online store with it, and measures a
// bare pgx query of one row: the pieces scripts/bench-floor drives.
//
//	widegen gen  --dir DIR --features 250 --entities 100000 [--duckdb PATH] [--postgres DSN]
//	widegen gen  --dir DIR --features 1000 --entities 10000 --split 3 --duckdb PATH
//	widegen warm --addr 127.0.0.1:18815 --features 250 --entities 100000 [--chunk 10000]
//	widegen pgx  --postgres DSN --features 50 --entities 100000 --rate 250 --duration 10s [--label L]
//	widegen pgx  --postgres DSN --online-table fletch_online --entities 100000 --rate 250 --duration 10s
//
// gen writes wide.py and the resolvers into DIR, checks that they load, and
// (re)creates the table wide_users with the data in the DuckDB file and/or
// the Postgres database given. With --split K it writes the split
// repository instead (one computed class SplitUser of mixed float, int and
// string features served by K resolvers over K DuckDB tables). pgx prints a human line and a JSON line in
// the floor tool's format (`floor table` reads it).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fletch-engine/fletch/examples/wide"
	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

const usage = "usage: widegen gen|warm|pgx [flags] (widegen CMD -h for the flags)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "widegen:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmds := map[string]func(context.Context, []string) error{"gen": cmdGen, "warm": cmdWarm, "pgx": cmdPgx}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q%s; %s", args[0], suggest.DidYouMean(args[0], []string{"gen", "warm", "pgx"}), usage)
	}
	return cmd(ctx, args[1:])
}

func cmdGen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder to write the feature repository into (required)")
	n := fs.Int("features", 250, "float features per entity, f0..f{N-1}")
	m := fs.Int("entities", 100_000, "entities, ids 1..M")
	duck := fs.String("duckdb", "", "DuckDB database file to (re)create the table in")
	pg := fs.String("postgres", "", "Postgres DSN to (re)create the table in")
	split := fs.Int("split", 0, "K > 0: the split repository, K resolvers over K DuckDB tables (no Postgres)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("gen: --dir is required")
	}
	if *split > 0 && *pg != "" {
		return errors.New("gen: --split writes DuckDB tables only, not --postgres")
	}
	write := func() error { return wide.WriteRepo(*dir, *n) }
	load := func(db *sql.DB) error { return wide.LoadDuckDB(ctx, db, *n, *m) }
	if *split > 0 {
		write = func() error { return wide.WriteSplitRepo(*dir, *n, *split) }
		load = func(db *sql.DB) error { return wide.LoadSplitDuckDB(ctx, db, *n, *split, *m) }
	}
	if err := write(); err != nil {
		return err
	}
	g, err := features.Load(*dir)
	if err != nil {
		return fmt.Errorf("the generated repository does not load: %w", err)
	}
	fmt.Printf("widegen: wrote %s (classes %v, %d features each)\n", *dir, g.ClassNames(), *n)
	if *duck != "" {
		start := time.Now()
		src, err := duckdb.Open(*duck)
		if err != nil {
			return err
		}
		err = load(src.DB())
		if cerr := src.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Printf("widegen: %s: %d rows × %d features in %s\n", *duck, *m, *n, time.Since(start).Round(time.Millisecond))
	}
	if *pg != "" {
		start := time.Now()
		pool, err := pgxpool.New(ctx, *pg)
		if err != nil {
			return err
		}
		defer pool.Close()
		if err := wide.LoadPostgres(ctx, pool, *n, *m); err != nil {
			return err
		}
		fmt.Printf("widegen: Postgres: %s with %d rows × %d features in %s\n", wide.Table, *m, *n, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func cmdWarm(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("warm", flag.ContinueOnError)
	var o wide.WarmOptions
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8815", "fletch server (plaintext gRPC)")
	fs.StringVar(&o.Class, "class", wide.CachedClass, "the cacheable class")
	fs.IntVar(&o.Features, "features", 250, "features to cache, f0..f{N-1}")
	fs.IntVar(&o.Entities, "entities", 100_000, "entities, ids 1..M")
	fs.IntVar(&o.Chunk, "chunk", 10_000, "ids per query")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for the write-back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Log = os.Stdout
	_, err := wide.Warm(ctx, o)
	return err
}

func cmdPgx(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pgx", flag.ContinueOnError)
	dsn := fs.String("postgres", "", "Postgres DSN (required)")
	label := fs.String("label", "pgx-1x50", "label of the JSON line")
	var o wide.PgxOptions
	fs.IntVar(&o.Features, "features", 50, "columns f0..f{N-1} to read")
	fs.IntVar(&o.Entities, "entities", 100_000, "ids drawn from 1..M")
	fs.StringVar(&o.OnlineTable, "online-table", "", "a PostgreSQL online store's table: read the packed entity of each id there instead (the store's floor)")
	fs.Float64Var(&o.Rate, "rate", 250, "queries per second, one at a time (0: back to back)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", time.Second, "unmeasured run before, at the same rate")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed for ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		return errors.New("pgx: --postgres is required")
	}
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *warmup > 0 {
		w := o
		w.Duration, w.Seed = *warmup, o.Seed+1
		if _, err := wide.PgxLoad(ctx, pool, w); err != nil {
			return err
		}
	}
	rep, err := wide.PgxLoad(ctx, pool, o)
	if err != nil {
		return err
	}
	rep.Label, rep.Target = *label, pool.Config().ConnConfig.Host
	fmt.Printf("pgx[%s] K=1 F=%d rate=%g/s %s: requests=%d errors=%d achieved=%.1f/s p50=%.0fus p90=%.0fus p99=%.0fus p999=%.0fus max=%.0fus (closed loop: service times)\n",
		rep.Label, rep.Features, rep.Rate, o.Duration, rep.Requests, rep.Errors, rep.Achieved, rep.P50, rep.P90, rep.P99, rep.P999, rep.Max)
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	if rep.Errors > 0 {
		return fmt.Errorf("pgx: %d queries failed, the first: %s", rep.Errors, rep.FirstError)
	}
	return nil
}
