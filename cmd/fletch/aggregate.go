package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/tiles"
)

const aggregateUsage = `Usage:
  fletch aggregate backfill --repo DIR [--config FILE] [--feature CLASS.FEATURE ...] [--start RFC3339] [--end RFC3339]
        materialize the aggregation tiles of windowed features (default: every
        materialized one) for the events in the range (default: all the sources
        hold), in chunks of 64 buckets; a rerun skips the chunks already written
  fletch aggregate status --repo DIR [--config FILE]
        show what is materialized, for which range
`

func cmdAggregate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, aggregateUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "backfill":
		return cmdBackfill(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdTileStatus(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, aggregateUsage)
		return nil
	}
	return fmt.Errorf("unknown aggregate command %q%s\n\n%s", args[0], suggest.DidYouMean(args[0], []string{"backfill", "status"}), aggregateUsage)
}

// openTiles opens the repository in dir and its tile store.
func openTiles(dir, configPath string) (*repoEnv, *tiles.Store, error) {
	r, err := openRepo(dir, configPath, "")
	if err != nil {
		return nil, nil, err
	}
	if r.tiles != nil {
		return r, r.tiles, nil
	}
	st, err := tileStore(r.env, r.cfg, dir)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, st, nil
}

// tileStore opens the tile store of the repository in dir: the offline
// store's database, else the embedded one, else <dir>/.fletch/tiles.duckdb;
// cfg bounds the tiles it keeps resident (server.limits.max_tile_memory).
func tileStore(env *config.Env, cfg *config.Config, dir string) (*tiles.Store, error) {
	ctx := context.Background()
	fallback := filepath.Join(dir, ".fletch", "tiles.duckdb")
	if err := os.MkdirAll(filepath.Dir(fallback), 0o755); err != nil {
		return nil, err
	}
	src, db, err := env.TileDB(ctx, fallback)
	if err != nil {
		return nil, err
	}
	var opts []tiles.Option
	if m := cfg.Server.Limits.MaxTileMemory; m != nil {
		opts = append(opts, tiles.WithCacheBytes(*m))
	}
	return tiles.Open(ctx, db, src, opts...)
}

func cmdBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aggregate backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	configPath := fs.String("config", "", "configuration file (default: <repo>/fletch.yaml)")
	var feats multi
	fs.Var(&feats, "feature", "a materialized windowed feature, class.feature (repeatable; default: all)")
	start := fs.String("start", "", "first event time (RFC 3339; default: the first event)")
	end := fs.String("end", "", "end of the events, exclusive (RFC 3339; default: the last event)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var opts tiles.BackfillOptions
	for _, t := range []struct {
		flag string
		to   *time.Time
	}{{*start, &opts.Start}, {*end, &opts.End}} {
		if t.flag == "" {
			continue
		}
		v, err := coerce.ParseTime(t.flag)
		if err != nil {
			return fmt.Errorf("--start/--end %q: %v", t.flag, err)
		}
		*t.to = v
	}
	r, st, err := openTiles(*repo, *configPath)
	if err != nil {
		return err
	}
	defer r.Close()
	g := r.engine.Graph()
	groups, err := pickMaterialized(g, feats)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		fmt.Fprintln(stdout, "no windowed feature of the repository has a materialization= (docs/TILES.md)")
		return nil
	}
	mem := memory.DefaultAllocator
	for _, group := range groups {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			return err
		}
		src, err := r.env.Source(spec.Resolver.Source)
		if err != nil {
			return err
		}
		opts.Progress = func(rep tiles.Report) { progressLine(stderr, rep) }
		reps, err := tiles.Backfill(ctx, mem, src, st, spec, opts)
		for _, rep := range reps {
			fmt.Fprintf(stderr, "\r\033[K")
			fmt.Fprintln(stdout, rep)
		}
		if err != nil {
			fmt.Fprintf(stderr, "\r\033[K")
			return fmt.Errorf("backfill of %s: %w (rerun to resume: written chunks are kept)", group.QualifiedName(), err)
		}
		if kind := r.cfg.OnlineStore.Kind; kind != "" && kind != "memory" {
			// A shared online store: serving reads the new tiles at once.
			// (An in-process one is filled by fletch serve when it starts.)
			pubs, err := tiles.PublishAll(ctx, mem, st, r.env.OnlineStore(), spec)
			for _, p := range pubs {
				fmt.Fprintln(stdout, p)
			}
			if err != nil {
				return fmt.Errorf("publishing the tiles of %s to the online store: %w (serving reads raw events until they are)", group.QualifiedName(), err)
			}
		}
	}
	return nil
}

// progressLine redraws the progress bar of a backfill on w.
func progressLine(w io.Writer, rep tiles.Report) {
	const width = 24
	filled := 0
	if rep.Chunks > 0 {
		filled = width * rep.Done / rep.Chunks
	}
	fmt.Fprintf(w, "\r\033[K%s %s [%s%s] %d/%d chunks  %d events  %d tiles  %.0f events/s  ETA %s",
		rep.Feature, "("+bucketLabel(rep.Bucket)+")", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		rep.Done, rep.Chunks, rep.Events, rep.Tiles, rep.Rate(), rep.ETA().Round(time.Second))
}

func bucketLabel(d time.Duration) string {
	return features.FormatDuration(d) + " buckets"
}

// pickMaterialized returns the materialized windowed features names
// (class.feature, by table or Python name) picks; all of them for none.
func pickMaterialized(g *features.Graph, names []string) ([]*features.Feature, error) {
	all := tiles.Materialized(g)
	if len(names) == 0 {
		return all, nil
	}
	var known []string
	for _, f := range all {
		known = append(known, f.QualifiedName())
	}
	var out []*features.Feature
	for _, n := range names {
		class, feat, ok := strings.Cut(n, ".")
		var f *features.Feature
		if c := g.Class(class); ok && c != nil {
			f = c.Feature(feat)
		}
		switch {
		case f == nil:
			return nil, fmt.Errorf("--feature %s: no such feature%s (materialized: %s)", n, suggest.DidYouMean(n, known), strings.Join(known, ", "))
		case f.Kind != features.WindowedGroup || f.Materialization == nil:
			return nil, fmt.Errorf("--feature %s: %s has no materialization= (materialized: %s)", n, f.QualifiedName(), strings.Join(known, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

func cmdTileStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aggregate status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	configPath := fs.String("config", "", "configuration file (default: <repo>/fletch.yaml)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, st, err := openTiles(*repo, *configPath)
	if err != nil {
		return err
	}
	defer r.Close()
	tables, err := st.Status(ctx)
	if err != nil {
		return err
	}
	g := r.engine.Graph()
	current := map[string]string{} // table → definition of today's repository
	for _, group := range tiles.Materialized(g) {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			fmt.Fprintf(stdout, "%s: %v\n", group.QualifiedName(), err)
			continue
		}
		for _, d := range group.Materialization.Buckets(group.Windows) {
			current[spec.Table(d)] = spec.Definition()
			if !hasTable(tables, spec.Table(d)) {
				fmt.Fprintf(stdout, "%s (%s): not materialized: run fletch aggregate backfill --feature %s\n", group.QualifiedName(), bucketLabel(d), group.QualifiedName())
			}
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tBUCKET\tFROM\tTO\tCHUNKS\tEVENTS\tTILES\tSTATE")
	for _, t := range tables {
		var events, ntiles int64
		for _, c := range t.Ranges {
			events += c.Events
			ntiles += c.Tiles
		}
		def, ok := current[t.Table]
		state := tableState(t, def, ok)
		from, to := "-", "-"
		if n := len(t.Ranges); n > 0 {
			from = time.UnixMicro(t.Ranges[0].Lo).UTC().Format(time.RFC3339)
			if t.Ranges[0].Lo == tiles.Beginning {
				from = "(no events before)"
				if len(t.Ranges) > 1 {
					from += " " + time.UnixMicro(t.Ranges[1].Lo).UTC().Format(time.RFC3339)
				}
			}
			to = time.UnixMicro(t.Ranges[n-1].Hi).UTC().Format(time.RFC3339)
			if gaps := countGaps(t.Ranges); gaps > 0 {
				to += fmt.Sprintf(" (%d gaps)", gaps)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Feature, strings.TrimSuffix(bucketLabel(t.Bucket), " buckets"), from, to, len(t.Ranges), events, ntiles, state)
	}
	return tw.Flush()
}

// tableState says what a tile table is to the repository, whose
// materialized feature defines it as def (ok: some feature does).
func tableState(t tiles.TableStatus, def string, ok bool) string {
	switch {
	case !ok:
		return "unused (no such materialized feature)"
	case def != t.Definition:
		return "stale (definition changed: the next backfill rebuilds it)"
	case len(t.Ranges) == 0:
		return "empty (no chunk written: run fletch aggregate backfill --feature " + t.Feature + ")"
	}
	return "current"
}

func hasTable(ts []tiles.TableStatus, name string) bool {
	for _, t := range ts {
		if t.Table == name {
			return true
		}
	}
	return false
}

func countGaps(rs []tiles.Covered) int {
	n := 0
	for i := 1; i < len(rs); i++ {
		if rs[i].Lo > rs[i-1].Hi {
			n++
		}
	}
	return n
}
