package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/robfig/cron/v3"

	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/tiles"
)

// tileJobs keep, inside fletch serve, the tiles that online serving reads
// (docs/TILES.md "Online serving"): at start, every materialized feature's
// tiles are published from the tile store to the online store; on each
// feature's schedule (its backfill_schedule, or fletch.yaml's tiles:), its backfill resumes (only chunks not yet
// covered, and the last one cut short, are computed) and its new tiles are
// published. A job still running when its next tick comes skips that tick.
type tileJobs struct {
	cancel context.CancelFunc
	cron   *cron.Cron
	wg     sync.WaitGroup
	once   sync.Once
}

// startTileJobs starts r's tile jobs; nil when r materializes nothing or
// has no tile store.
func startTileJobs(r *repoEnv) *tileJobs {
	g := r.engine.Graph()
	groups := tiles.Materialized(g)
	online := r.env.OnlineStore()
	if len(groups) == 0 || r.tiles == nil || online == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &tileJobs{cancel: cancel, cron: cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))}
	var specs []*tiles.Spec
	for _, group := range groups {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			slog.Warn("materialized feature not served from tiles", "feature", group.QualifiedName(), "err", err)
			continue
		}
		specs = append(specs, spec)
		if sched := r.cfg.ScheduleOf(group.QualifiedName(), group.Materialization.BackfillSchedule); sched != "" {
			if _, err := j.cron.AddFunc(sched, func() { refreshTiles(ctx, r, spec) }); err != nil {
				slog.Warn("backfill_schedule not run", "feature", group.QualifiedName(), "schedule", sched, "err", err)
			}
		}
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		for _, spec := range specs {
			publishTiles(ctx, r, spec)
		}
	}()
	j.cron.Start()
	return j
}

// stop ends the jobs: a running backfill is cancelled (its written chunks
// are kept), and stop returns once it has.
func (j *tileJobs) stop() {
	if j == nil {
		return
	}
	j.once.Do(func() {
		j.cancel()
		<-j.cron.Stop().Done()
		j.wg.Wait()
	})
}

// refreshTiles resumes spec's backfill up to now and publishes its tiles.
func refreshTiles(ctx context.Context, r *repoEnv, spec *tiles.Spec) {
	src, err := r.env.Source(spec.Resolver.Source)
	if err != nil {
		slog.Error("scheduled backfill failed", "feature", spec.Group.QualifiedName(), "err", err)
		return
	}
	start := time.Now()
	reps, err := tiles.Backfill(ctx, memory.DefaultAllocator, src, r.tiles, spec, tiles.BackfillOptions{})
	for _, rep := range reps {
		slog.Info("scheduled backfill: "+rep.String(), "feature", rep.Feature)
	}
	if err != nil {
		if ctx.Err() == nil {
			slog.Error("scheduled backfill failed (the next run resumes it)", "feature", spec.Group.QualifiedName(), "err", err, "after", time.Since(start).Round(time.Millisecond))
		}
		return
	}
	publishTiles(ctx, r, spec)
}

// publishTiles publishes spec's tiles to the online store.
func publishTiles(ctx context.Context, r *repoEnv, spec *tiles.Spec) {
	pubs, err := tiles.PublishAll(ctx, memory.DefaultAllocator, r.tiles, r.env.OnlineStore(), spec)
	for _, p := range pubs {
		slog.Info(fmt.Sprint(p), "feature", p.Feature)
	}
	if err != nil && ctx.Err() == nil {
		slog.Error("publishing tiles to the online store failed: serving reads raw events instead", "feature", spec.Group.QualifiedName(), "err", err)
	}
}

// checkSchedules reports fletch.yaml's tiles.schedules entries that name
// no materialized feature of g.
func checkSchedules(g *features.Graph, cfg *config.Config) error {
	var names []string
	for _, f := range tiles.Materialized(g) {
		names = append(names, f.QualifiedName())
	}
	return cfg.CheckSchedules(names)
}
