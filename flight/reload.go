package flight

import (
	"context"
	"log/slog"
	"sync"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/sql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// repo is everything the server answers from that depends on the
// repository: a reload (Server.Reload) replaces it whole. Every call reads
// the one that was current when it started (repoOf), and holds it until it
// ends, so that a query finishes on the plan and engine it started with.
type repo struct {
	engine *planner.Engine
	graph  *features.Graph
	sql    *sql.Reader
	native *native.Reader
	rel    *relational.Engine
	ownRel bool // rel was made by the server: it closes it
	// dirs are the repository's folder as errors may spell it (see
	// answerError).
	dirs []string
	auth *auth.Verifier

	mu      sync.Mutex
	calls   int  // calls holding the repo
	retired bool // replaced: closed once calls reach 0
	drained chan struct{}
}

func (s *Server) newRepo(engine *planner.Engine, verifier *auth.Verifier, exprs native.Expressions, rel *relational.Engine) *repo {
	g := engine.Graph()
	r := &repo{
		engine:  engine,
		graph:   g,
		sql:     sql.NewReader(g, s.opts.CacheEntries, s.opts.CacheBytes/2),
		native:  native.NewReader(g, expressions(exprs), s.opts.CacheEntries, s.opts.CacheBytes/4),
		auth:    verifier,
		rel:     rel,
		drained: make(chan struct{}),
	}
	if g != nil && g.Dir != "" {
		r.dirs = repoPrefixes(g.Dir)
	}
	if r.rel == nil {
		rel, err := relational.New(engine, s.opts.Mem)
		if err != nil {
			// Lookups still work; SQL beyond them is refused (planRelational).
			slog.Warn("SQL beyond feature lookups is off", "err", err)
		}
		r.rel, r.ownRel = rel, rel != nil
	}
	return r
}

// Reload makes engine (its graph), verifier and exprs answer the calls
// that start from now on; the calls running keep the repository they
// started with. The returned channel is closed when the last of them has
// ended: only then may the caller close the old engine. Prepared
// statements of the old repository are refused from now on
// (FailedPrecondition: prepare again), since their plans belong to an
// engine about to close.
func (s *Server) Reload(engine *planner.Engine, verifier *auth.Verifier, exprs native.Expressions) <-chan struct{} {
	old := s.cur.Swap(s.newRepo(engine, verifier, exprs, nil))
	old.mu.Lock()
	defer old.mu.Unlock()
	old.retired = true
	if old.calls == 0 {
		old.close()
	}
	return old.drained
}

// close ends what the server made for r; r.mu is held.
func (r *repo) close() {
	if r.ownRel {
		r.rel.Close()
	}
	close(r.drained)
}

// acquire returns the current repo, held until release.
func (s *Server) acquire() *repo {
	for {
		r := s.cur.Load()
		r.mu.Lock()
		if !r.retired {
			r.calls++
			r.mu.Unlock()
			return r
		}
		r.mu.Unlock() // swapped between the load and the lock: take the new one
	}
}

func (r *repo) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls--
	if r.retired && r.calls == 0 {
		r.close()
	}
}

type repoKey struct{}

// repoOf is the repository the call of ctx holds (the current one outside
// a call).
func (s *Server) repoOf(ctx context.Context) *repo {
	if r, ok := ctx.Value(repoKey{}).(*repo); ok {
		return r
	}
	return s.cur.Load()
}

// errReloaded answers a prepared statement made before a reload.
var errReloaded = status.Error(codes.FailedPrecondition, "the feature repository was reloaded since this statement was prepared: prepare it again")

type repoStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a repoStream) Context() context.Context { return a.ctx }
