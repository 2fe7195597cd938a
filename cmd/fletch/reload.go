package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// reloader replaces the repository a server answers from, on SIGHUP or
// (with --watch) when its files change: it builds a complete new
// environment and swaps it in only when that succeeded, so that a broken
// repository is refused (its errors logged) and the old one keeps
// serving. The replaced environment closes once the calls that started on
// it have ended (flight.Server.Reload). docs/OPERATIONS.md "Reloading".
type reloader struct {
	dir, configPath string
	srv             *flight.Server
	reloads         *prometheus.CounterVec // nil without metrics

	mu      sync.Mutex // one reload at a time; guards cur
	cur     *repoEnv
	cfgData []byte         // fletch.yaml as cur was opened from it
	closing sync.WaitGroup // replaced environments not closed yet
}

func newReloader(dir, configPath string, env *repoEnv, srv *flight.Server) *reloader {
	r := &reloader{dir: dir, configPath: configPath, srv: srv, cur: env, cfgData: readConfig(env.cfg.Path)}
	if env.metrics != nil {
		r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fletch", Name: "reloads_total",
			Help: "Reloads of the feature repository and fletch.yaml, by result (ok, refused)."}, []string{"result"})
		env.metrics.Registry().MustRegister(r.reloads)
	}
	return r
}

// readConfig is the file at path; nil when there is none (the embedded
// default).
func readConfig(path string) []byte {
	if path == "" {
		return nil
	}
	data, _ := os.ReadFile(path)
	return data
}

// current is the environment serving now.
func (r *reloader) current() *repoEnv {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// reload rebuilds the repository and fletch.yaml and swaps them in, or
// logs why not.
func (r *reloader) reload(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	next, err := r.open()
	if err != nil {
		slog.Error("reload refused, the previous repository still answers", "trigger", why, "err", err)
		r.count("refused")
		return
	}
	old := r.cur
	drained := r.srv.Reload(next.engine, authOf(next), pythonExprs(next.engine.Graph()))
	// The old environment's tile jobs end now, not once its calls have:
	// two backfills of one tile table would contend for its chunks.
	old.jobs.stop()
	next.jobs = startTileJobs(next)
	r.cur = next
	if next.live = old.live; next.live != nil {
		next.live.Store(next)
	}
	r.cfgData = readConfig(next.cfg.Path)
	r.closing.Add(1)
	go func() {
		defer r.closing.Done()
		<-drained // the calls that started on old have ended
		old.Close()
	}()
	g := next.engine.Graph()
	for _, w := range g.Warnings {
		slog.Warn(fmt.Sprint(w))
	}
	for _, w := range next.engine.CheckPython() {
		slog.Warn(fmt.Sprint(w))
	}
	slog.Info("reloaded", "trigger", why, "classes", len(g.Classes), "features", featureCount(g),
		"config", map[bool]string{true: "reopened", false: "unchanged"}[next.env != old.env], "duration", time.Since(start).Round(time.Millisecond))
	r.count("ok")
}

func (r *reloader) count(result string) {
	if r.reloads != nil {
		r.reloads.WithLabelValues(result).Inc()
	}
}

// open builds the new environment. An unchanged fletch.yaml keeps the
// stores and sources open (an embedded DuckDB file cannot be opened twice);
// a changed one is opened anew, and the old one closes after its calls.
// Addresses to listen on are the process's: they do not change.
func (r *reloader) open() (*repoEnv, error) {
	old := r.cur
	if data := readConfig(old.cfg.Path); old.cfg.Path != "" && bytes.Equal(data, r.cfgData) || old.cfg.Path == "" && r.configPath == "" && !exists(filepath.Join(r.dir, "fletch.yaml")) {
		next, err := openRepoOn(r.dir, old.cfg, old, old.metrics, old.tracing, false)
		if err != nil {
			return nil, err
		}
		if err := checkAuth(next); err != nil {
			next.engine.Close()
			return nil, err
		}
		old.keepEnv = true // next owns it now
		return next, nil
	}
	cfg, err := findConfig(r.dir, r.configPath, "")
	if err != nil {
		return nil, err
	}
	cfg.Server.HTTPListen = old.cfg.Server.HTTPListen
	next, err := openRepoOn(r.dir, cfg, nil, old.metrics, old.tracing, false)
	if err != nil {
		return nil, err
	}
	if err := checkAuth(next); err != nil {
		next.Close()
		return nil, err
	}
	return next, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func featureCount(g *features.Graph) int {
	n := 0
	for _, c := range g.Classes {
		n += len(c.Features)
	}
	return n
}

// start reloads on SIGHUP, and on changes of the repository's files when
// watch is set, until ctx ends.
func (r *reloader) start(ctx context.Context, watch bool) error {
	var changes <-chan string
	if watch {
		w, err := r.watch(ctx)
		if err != nil {
			return err
		}
		changes = w
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload("SIGHUP")
			case name := <-changes:
				r.reload("changed " + name)
			}
		}
	}()
	return nil
}

// watchSettle is how long the files must stay quiet after a change before
// a watch reloads: an editor's save or a checkout is several events.
const watchSettle = 300 * time.Millisecond

// watch reports a change of the repository's definitions (.py, .sql) or
// of fletch.yaml, once the files have settled.
func (r *reloader) watch(ctx context.Context) (<-chan string, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	dirs := map[string]bool{}
	err = filepath.WalkDir(r.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if path != r.dir && (d.Name()[0] == '.' || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		dirs[path] = true
		return nil
	})
	if r.configPath != "" {
		dirs[filepath.Dir(r.configPath)] = true
	}
	for d := range dirs {
		if err == nil {
			err = w.Add(d)
		}
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("--watch: %w", err)
	}
	out := make(chan string)
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		var last string
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-w.Events:
				switch filepath.Ext(ev.Name) {
				case ".py", ".sql", ".yaml", ".yml":
					last = filepath.Base(ev.Name)
					timer = time.After(watchSettle)
				}
			case err := <-w.Errors:
				slog.Warn("--watch: the file watch failed; SIGHUP still reloads", "err", err)
			case <-timer:
				timer = nil
				select {
				case out <- last:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
