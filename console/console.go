package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
)

//go:embed static
var static embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Config is what a console shows.
type Config struct {
	// Current is the engine serving now and the verifier of its tokens
	// (nil: auth off); a reload may change both.
	Current func() (*planner.Engine, *auth.Verifier)
	// Exprs reads the `_` expressions of feature queries' outputs over
	// a graph.
	Exprs func(*features.Graph) native.Expressions
	// Gatherer is the server's metrics registry; nil: no live page (a
	// console without a server).
	Gatherer prometheus.Gatherer
	// Slowest is the ring the server records its queries in; nil: none.
	Slowest *Slowest
	// Mem allocates the records of the console's queries; nil: Go's.
	Mem memory.Allocator
	// Mode says what the console is attached to, for the page's header:
	// "server" or "repository".
	Mode string
}

// Handler serves the console's pages and API under Prefix.
func Handler(cfg Config) http.Handler {
	if cfg.Mem == nil {
		cfg.Mem = memory.DefaultAllocator
	}
	c := &console{cfg: cfg}
	if cfg.Gatherer != nil {
		c.live = &sampler{g: cfg.Gatherer, every: liveEvery}
	}
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.FileServerFS(sub))
	mux.Handle("GET "+Prefix, page(files))
	mux.HandleFunc("GET "+Prefix+"api/whoami", c.api(c.whoami))
	mux.HandleFunc("GET "+Prefix+"api/catalogue", c.api(c.catalogue))
	mux.HandleFunc("GET "+Prefix+"api/lineage", c.api(c.lineage))
	mux.HandleFunc("POST "+Prefix+"api/query", c.api(c.query))
	mux.HandleFunc("GET "+Prefix+"api/live", c.api(c.liveSeries))
	mux.HandleFunc("GET "+Prefix+"api/slow", c.api(c.slow))
	return mux
}

// page serves the pages' files: revalidated at each load (a new binary
// brings new ones), run only as this origin's scripts (the token the page
// keeps must not be readable by anything else), never framed.
func page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

type console struct {
	cfg  Config
	live *sampler

	mu    sync.Mutex
	graph *features.Graph // the graph deps was built for
	deps  *deps
}

// request is one API call: its viewer and the engine it reads.
type request struct {
	r      *http.Request
	v      viewer
	engine *planner.Engine
}

// depsOf is the dependency index of g, built once per graph (a reload
// brings a new one).
func (c *console) depsOf(g *features.Graph) *deps {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graph != g {
		c.graph, c.deps = g, newDeps(g)
	}
	return c.deps
}

// apiError is an error the caller can fix, answered with its status.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }

func badRequest(err error) error { return &apiError{status: http.StatusBadRequest, err: err} }

// api authenticates a call, runs h and answers its result as JSON, or
// its error as {"error": message}.
func (c *console) api(h func(req request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		engine, verifier := c.cfg.Current()
		v, err := authenticate(r, verifier)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fletch"`)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": strings.TrimPrefix(err.Error(), errUnauthenticated.Error()+"\n")})
			return
		}
		out, err := h(request{r: r, v: v, engine: engine})
		if err != nil {
			status := http.StatusInternalServerError
			var ae *apiError
			if errors.As(err, &ae) {
				status = ae.status
			} else if errors.Is(err, context.Canceled) {
				return
			} else {
				// A query's failure is the caller's to read, as the Flight
				// port answers it; it never takes the server down.
				status = http.StatusUnprocessableEntity
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		// Encoded whole before the status is sent: a value that cannot be
		// encoded is an error, not a truncated answer.
		body, err := json.Marshal(out)
		if err != nil {
			slog.Warn("console: encoding an answer", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "the answer could not be encoded as JSON: " + err.Error()})
			return
		}
		_, _ = w.Write(body)
	}
}

// Whoami is who the console sees.
type Whoami struct {
	Auth   bool     `json:"auth"`
	Name   string   `json:"name,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	Mode   string   `json:"mode"`
	Live   bool     `json:"live"`
}

func (c *console) whoami(req request) (any, error) {
	out := Whoami{Mode: c.cfg.Mode, Live: c.live != nil}
	if p := req.v.p; p != nil {
		out.Auth, out.Name, out.Scopes = true, p.Name, p.Scopes()
	}
	return out, nil
}

func (c *console) catalogue(req request) (any, error) {
	g := req.engine.Graph()
	return catalogue(g, c.depsOf(g), req.v), nil
}

func (c *console) lineage(req request) (any, error) {
	g := req.engine.Graph()
	l, err := lineage(g, c.depsOf(g), req.v, req.r.URL.Query().Get("feature"))
	if err != nil {
		return nil, &apiError{status: http.StatusNotFound, err: err}
	}
	return l, nil
}

// maxQueryBody bounds a query request.
const maxQueryBody = 1 << 20

func (c *console) query(req request) (any, error) {
	var q QueryRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, req.r.Body, maxQueryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, badRequest(errors.New("the query must be JSON: {\"class\", \"inputs\", \"outputs\"} or {\"sql\"}: " + err.Error()))
	}
	r := runner{engine: req.engine, mem: c.cfg.Mem}
	if c.cfg.Exprs != nil {
		r.exprs = c.cfg.Exprs(req.engine.Graph())
	}
	return r.run(req.r.Context(), req.v, q)
}

// Live is the live page's data.
type Live struct {
	Points []LivePoint `json:"points"`
	Every  float64     `json:"every_s"`
}

func (c *console) liveSeries(req request) (any, error) {
	if c.live == nil {
		return nil, &apiError{status: http.StatusNotFound, err: errors.New("no live metrics: the console of `fletch console` serves no queries; run `fletch serve --http-listen ADDR` to see a server's")}
	}
	points := c.live.poll(time.Now())
	for i := range points {
		ratios := map[string]float64{}
		for class, r := range points[i].HitRatio {
			if req.v.canRead(class) {
				ratios[class] = r
			}
		}
		points[i].HitRatio = ratios
	}
	if points == nil {
		points = []LivePoint{}
	}
	return Live{Points: points, Every: liveEvery.Seconds()}, nil
}

// SlowView is one of the slowest recent queries.
type SlowView struct {
	Path    string   `json:"path"`
	Code    string   `json:"code"`
	MS      float64  `json:"ms"`
	End     string   `json:"end"`
	Trace   string   `json:"trace"`
	Plan    string   `json:"plan,omitempty"`
	Classes []string `json:"classes,omitempty"`
}

func (c *console) slow(req request) (any, error) {
	out := []SlowView{}
	if c.cfg.Slowest == nil {
		return out, nil
	}
	for _, q := range c.cfg.Slowest.recent(time.Now(), func(q SlowQuery) bool { return req.v.canReadAll(q.Classes) }) {
		sv := SlowView{Path: q.Path, Code: q.Code, MS: ms(q.Took), End: q.End.UTC().Format(time.RFC3339Nano), Trace: q.Trace, Classes: q.Classes}
		if q.Plan != nil {
			sv.Plan = q.Plan()
		}
		out = append(out, sv)
	}
	return out, nil
}
