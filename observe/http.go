package observe

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness checks what a server depends on: the names of the sources and
// stores that do not answer, with why (config.Env.Ready).
type Readiness func(ctx context.Context) map[string]error

// readyTimeout bounds one readiness check: a source that does not answer
// within it is not ready, and a probe must not hang.
const readyTimeout = 2 * time.Second

// Handler serves, on a port apart from the queries':
//
//   - /metrics: m in Prometheus' text format (nil: 404);
//   - /healthz: 200 while the process runs;
//   - /readyz: 200 when ready reports nothing failing, else 503 with a JSON
//     object of what failed and why.
func NewHTTPHandler(m *Metrics, ready Readiness) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		failed := ready(ctx)
		if len(failed) == 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		out := map[string]string{}
		for _, n := range names {
			out[n] = failed[n].Error()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"not_ready": out})
	})
	return mux
}

// Serve serves h on lis until ctx ends.
func Serve(ctx context.Context, lis net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
