// Package config reads fletch.yaml, the environment of a feature
// repository (named sources, the online store, the server's address), and
// opens what it names, and the offline store that logs computed
// values. No file means the embedded default: one embedded
// DuckDB database that every `-- source:` name resolves to, and the memory
// online store. docs/CONFIG.md documents the file.
//
// It knows the kinds of stores, never features: feature definitions live
// in the repository's .py and .sql files.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/statement"
	"gopkg.in/yaml.v3"
)

// FileName is the configuration file looked for in a repository.
const FileName = "fletch.yaml"

// DefaultListen is the server's address when the file names none.
const DefaultListen = "127.0.0.1:8815"

// Config is a parsed fletch.yaml, or the embedded default.
type Config struct {
	// Path is the file read; "" for the embedded default.
	Path string
	// Sources are the named sources. When the file has no `sources:`
	// section (or there is no file), Embedded is set instead.
	Sources map[string]SourceConfig
	// Embedded makes every source name resolve to one embedded DuckDB
	// database at EmbeddedPath ("" is in-memory); the caller chooses the
	// path, e.g. <repo>/.fletch/fletch.duckdb.
	Embedded     bool
	EmbeddedPath string

	OnlineStore  OnlineStoreConfig
	OfflineStore OfflineStoreConfig // offline.go
	Server       ServerConfig
	// Auth is `auth:` (auth.go); nil when there is none: no auth.
	Auth *AuthConfig
	// Python is `python:` (python.go).
	Python PythonConfig
	// Tiles is `tiles:` (tiles.go).
	Tiles TilesConfig
}

// SourceConfig is one entry of `sources:`.
type SourceConfig struct {
	Name string
	Kind string // "duckdb" or "postgres"
	// Path is a duckdb database file, relative to the configuration file's
	// folder; "" or ":memory:" is in-memory.
	Path string
	// DSN, MaxConns and StatementTimeout configure a postgres source.
	DSN              string
	MaxConns         int
	StatementTimeout time.Duration
	// MaxConcurrent and MaxQueued are the source's bulkhead: its queries
	// running at once and waiting beyond them (0: no bulkhead; MaxQueued
	// unset is 4 × MaxConcurrent). Breaker is its circuit breaker.
	MaxConcurrent int
	MaxQueued     int
	// MaxPerResolver bounds the queries of one resolver running at once
	// against the source (0: none): a resolver whose table is locked
	// leaves the rest of the source to the others.
	MaxPerResolver int
	Breaker        BreakerConfig
	Line           int // where the entry is, for errors
}

// BreakerConfig is a `breaker:` section: Failures consecutive failures
// open the breaker (0: none) for OpenFor.
type BreakerConfig struct {
	Failures int
	OpenFor  time.Duration
}

// ServerConfig is `server:`.
type ServerConfig struct {
	Listen string     // host:port
	TLS    *TLSConfig // nil: plaintext (auth.go)
	// PlanCacheEntries and PlanCacheBytes bound the plan cache (0: the
	// planner's defaults).
	PlanCacheEntries int
	PlanCacheBytes   int64
	// HTTPListen is server.http.listen, the address of the operators' port
	// (/metrics, /healthz, /readyz); "" is none.
	HTTPListen string
	// LogFormat (text, json) and LogLevel (debug, info, warn, error) are
	// server.log's; "" is text and info.
	LogFormat string
	LogLevel  string
	// Limits are server.limits (0: the server's defaults).
	Limits LimitsConfig
	// Tracing is server.tracing; its zero value exports no traces.
	Tracing TracingConfig
	// SpineChunkRows and SpineEndpointRows are server.spine's: the input
	// rows planned and run at once, and the rows of one endpoint of a
	// spine's FlightInfo (0: the server's defaults). docs/FLIGHTSQL.md
	// "Big spines".
	SpineChunkRows    int
	SpineEndpointRows int
}

// TracingConfig is `server.tracing:`, where the server sends its
// OpenTelemetry traces (docs/OPERATIONS.md "Traces").
type TracingConfig struct {
	// Endpoint is the OTLP receiver, a URL: http:// (plaintext) or
	// https:// (TLS); "" exports nothing.
	Endpoint string
	// Protocol is "grpc" (OTLP/gRPC, the default) or "http"
	// (OTLP/HTTP protobuf).
	Protocol string
	// SampleRatio is the fraction of queries traced when the caller's
	// traceparent does not decide (nil: 1).
	SampleRatio *float64
	// ServiceName is the service.name of the spans ("" is fletch).
	ServiceName string
}

// LimitsConfig is `server.limits:`, what one call may ask (docs/CONFIG.md).
type LimitsConfig struct {
	MaxSQLBytes        int64
	MaxIdentifierBytes int64
	MaxInputRows       int
	MaxAnswerBytes     int64
	MaxHasManyRows     int
	MaxQueries         int
	MaxQueriesPerToken int
	// MaxExpressionDepth (at most statement.MaxDepth) and
	// MaxExpressionNodes bound one query's expressions (0: the server's
	// defaults).
	MaxExpressionDepth int
	MaxExpressionNodes int
	// MaxQueryMemory bounds the Arrow memory one query holds at once
	// (0: no bound).
	MaxQueryMemory int64
	// MaxTileMemory bounds the aggregation tiles kept resident for
	// training sets (docs/TILES.md; nil: the tile store's default, 0: none).
	MaxTileMemory *int64
}

// Default is the embedded default configuration.
func Default() *Config {
	return &Config{
		Embedded:    true,
		OnlineStore: OnlineStoreConfig{Kind: "memory"},
		Server:      ServerConfig{Listen: DefaultListen},
	}
}

// Find returns the configuration of the repository in repoDir: the file at
// explicitPath when given (it must exist), else <repoDir>/fletch.yaml when
// it exists, else the embedded default.
func Find(repoDir, explicitPath string) (*Config, error) {
	path := explicitPath
	if path == "" {
		path = filepath.Join(repoDir, FileName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the contents of the configuration file at path (used for
// error positions and to resolve relative paths). ${NAME} in a value is
// replaced by the environment variable NAME, which must be set.
func Parse(path string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.Path = path
	p := parser{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 || len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	err := p.mapping(doc.Content[0], "", map[string]func(*yaml.Node) error{
		"sources": func(n *yaml.Node) error {
			cfg.Embedded = false
			cfg.Sources = map[string]SourceConfig{}
			return p.sources(n, cfg)
		},
		"online_store":  func(n *yaml.Node) error { return p.onlineStore(n, &cfg.OnlineStore) },
		"offline_store": func(n *yaml.Node) error { return p.offlineStore(n, &cfg.OfflineStore) },
		"auth":          func(n *yaml.Node) error { return p.auth(n, cfg) },
		"python":        func(n *yaml.Node) error { return p.python(n, &cfg.Python) },
		"tiles":         func(n *yaml.Node) error { return p.tiles(n, &cfg.Tiles) },
		"server": func(n *yaml.Node) error {
			return p.mapping(n, "server", map[string]func(*yaml.Node) error{
				"listen": p.str(&cfg.Server.Listen),
				"tls":    p.tls(&cfg.Server.TLS),
				"plan_cache": func(n *yaml.Node) error {
					return p.mapping(n, "server.plan_cache", map[string]func(*yaml.Node) error{
						"max_entries": p.integer(&cfg.Server.PlanCacheEntries),
						"max_bytes":   p.bytes(&cfg.Server.PlanCacheBytes),
					})
				},
				"limits": func(n *yaml.Node) error {
					l := &cfg.Server.Limits
					return p.mapping(n, "server.limits", map[string]func(*yaml.Node) error{
						"max_sql_bytes":         p.bytes(&l.MaxSQLBytes),
						"max_identifier_bytes":  p.bytes(&l.MaxIdentifierBytes),
						"max_input_rows":        p.integer(&l.MaxInputRows),
						"max_answer_bytes":      p.bytes(&l.MaxAnswerBytes),
						"max_has_many_rows":     p.integer(&l.MaxHasManyRows),
						"max_queries":           p.integer(&l.MaxQueries),
						"max_queries_per_token": p.integer(&l.MaxQueriesPerToken),
						"max_expression_depth":  p.atMost(p.integer(&l.MaxExpressionDepth), &l.MaxExpressionDepth, statement.MaxDepth, "the front ends read no deeper"),
						"max_expression_nodes":  p.integer(&l.MaxExpressionNodes),
						"max_query_memory":      p.bytes(&l.MaxQueryMemory),
						"max_tile_memory": func(n *yaml.Node) error {
							l.MaxTileMemory = new(int64)
							return p.bytes(l.MaxTileMemory)(n)
						},
					})
				},
				"spine": func(n *yaml.Node) error {
					return p.mapping(n, "server.spine", map[string]func(*yaml.Node) error{
						"chunk_rows":    p.integer(&cfg.Server.SpineChunkRows),
						"endpoint_rows": p.integer(&cfg.Server.SpineEndpointRows),
					})
				},
				"tracing": func(n *yaml.Node) error {
					t := &cfg.Server.Tracing
					if err := p.mapping(n, "server.tracing", map[string]func(*yaml.Node) error{
						"otlp_endpoint": p.url(&t.Endpoint),
						"protocol":      p.oneOf(&t.Protocol, "protocol", "grpc", "http"),
						"sample_ratio":  p.ratio(&t.SampleRatio),
						"service_name":  p.str(&t.ServiceName),
					}); err != nil {
						return err
					}
					if t.Endpoint == "" {
						return p.errorf(n, "server.tracing has no otlp_endpoint (the OTLP receiver, e.g. http://127.0.0.1:4317)")
					}
					return nil
				},
				"http": func(n *yaml.Node) error {
					return p.mapping(n, "server.http", map[string]func(*yaml.Node) error{
						"listen": p.str(&cfg.Server.HTTPListen),
					})
				},
				"log": func(n *yaml.Node) error {
					return p.mapping(n, "server.log", map[string]func(*yaml.Node) error{
						"format": p.oneOf(&cfg.Server.LogFormat, "format", "text", "json"),
						"level":  p.oneOf(&cfg.Server.LogLevel, "level", "debug", "info", "warn", "error"),
					})
				},
			})
		},
	})
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

type parser struct{ path string }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d:%d: %s", p.path, n.Line, n.Column, fmt.Sprintf(format, args...))
}

// mapping decodes a mapping node key by key, so that an unknown key is an
// error at its line with the nearest known key.
func (p *parser) mapping(n *yaml.Node, where string, fields map[string]func(*yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, "%s must be a mapping of keys to values", orTop(where))
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		decode, ok := fields[key.Value]
		if !ok {
			return p.errorf(key, "unknown key %q in %s%s (known keys: %s)", key.Value, orTop(where),
				suggest.DidYouMean(key.Value, known), joinQuoted(known))
		}
		if seen[key.Value] {
			return p.errorf(key, "key %q appears twice in %s", key.Value, orTop(where))
		}
		seen[key.Value] = true
		if err := decode(val); err != nil {
			return err
		}
	}
	return nil
}

func orTop(where string) string {
	if where == "" {
		return FileName
	}
	return where
}

func joinQuoted(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(x)
	}
	return out
}

func (p *parser) sources(n *yaml.Node, cfg *Config) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, "sources must be a mapping of source names to sources")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		name := key.Value
		if _, dup := cfg.Sources[name]; dup {
			return p.errorf(key, "source %q is defined twice", name)
		}
		sc := SourceConfig{Name: name, Line: key.Line}
		where := "sources." + name
		if err := p.mapping(val, where, map[string]func(*yaml.Node) error{
			"kind":              p.kind(&sc.Kind, "duckdb", "postgres"),
			"path":              p.str(&sc.Path),
			"dsn":               p.str(&sc.DSN),
			"max_conns":         p.integer(&sc.MaxConns),
			"statement_timeout": p.duration(&sc.StatementTimeout),
			"max_concurrent":    p.integer(&sc.MaxConcurrent),
			"max_queued":        p.integer(&sc.MaxQueued),
			"max_per_resolver":  p.integer(&sc.MaxPerResolver),
			"breaker":           p.breaker(&sc.Breaker, where+".breaker"),
		}); err != nil {
			return err
		}
		if sc.MaxQueued == 0 {
			sc.MaxQueued = 4 * max(sc.MaxConcurrent, sc.MaxPerResolver)
		}
		switch {
		case sc.Kind == "":
			return p.errorf(key, "source %q has no kind (duckdb or postgres)", name)
		case sc.Kind == "duckdb" && (sc.DSN != "" || sc.MaxConns != 0 || sc.StatementTimeout != 0):
			return p.errorf(key, "source %q is a duckdb source: it takes a path, not dsn, max_conns or statement_timeout", name)
		case sc.Kind == "postgres" && sc.Path != "":
			return p.errorf(key, "source %q is a postgres source: it takes a dsn, not a path", name)
		case sc.Kind == "postgres" && sc.DSN == "":
			return p.errorf(key, "postgres source %q has no dsn", name)
		}
		if sc.Kind == "duckdb" && sc.Path != "" && sc.Path != ":memory:" && !filepath.IsAbs(sc.Path) {
			sc.Path = filepath.Join(filepath.Dir(p.path), sc.Path)
		}
		cfg.Sources[name] = sc
	}
	return nil
}

func (p *parser) breaker(dst *BreakerConfig, where string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		return p.mapping(n, where, map[string]func(*yaml.Node) error{
			"failures": p.integer(&dst.Failures),
			"open_for": p.duration(&dst.OpenFor),
		})
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// scalar is the node's value with ${NAME} expanded.
func (p *parser) scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errorf(n, "want a single value here")
	}
	var missing string
	out := envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", p.errorf(n, "environment variable %s is not set", missing)
	}
	return out, nil
}

func (p *parser) str(dst *string) func(*yaml.Node) error {
	return func(n *yaml.Node) (err error) {
		*dst, err = p.scalar(n)
		return err
	}
}

func (p *parser) kind(dst *string, kinds ...string) func(*yaml.Node) error {
	return p.oneOf(dst, "kind", kinds...)
}

// oneOf decodes a value that must be one of values; what names it in the
// error ("kind", "format").
func (p *parser) oneOf(dst *string, what string, values ...string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		for _, k := range values {
			if v == k {
				*dst = v
				return nil
			}
		}
		return p.errorf(n, "unknown %s %q%s (known %ss: %s)", what, v, suggest.DidYouMean(v, values), what, joinQuoted(values))
	}
}

func (p *parser) integer(dst *int) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return p.errorf(n, "want a whole number ≥ 0, not %q", v)
		}
		*dst = i
		return nil
	}
}

// byteUnits are the suffixes of a size: binary (KiB) and decimal (KB).
var byteUnits = []struct {
	suffix string
	n      int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

// bytes decodes a size: a whole number of bytes, or one with a unit
// (64MiB, 500MB).
func (p *parser) bytes(dst *int64) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		num, mult := strings.TrimSpace(v), int64(1)
		for _, u := range byteUnits {
			if rest, ok := strings.CutSuffix(num, u.suffix); ok {
				num, mult = strings.TrimSpace(rest), u.n
				break
			}
		}
		i, err := strconv.ParseInt(num, 10, 64)
		if err != nil || i < 0 || i > math.MaxInt64/mult {
			return p.errorf(n, "want a size such as 64MiB, 500MB or 1048576, not %q", v)
		}
		*dst = i * mult
		return nil
	}
}

// atMost is decode, refusing a value of *dst over max, for why.
func (p *parser) atMost(decode func(*yaml.Node) error, dst *int, max int, why string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		if err := decode(n); err != nil {
			return err
		}
		if *dst > max {
			return p.errorf(n, "want at most %d (%s), not %d", max, why, *dst)
		}
		return nil
	}
}

// ratio decodes a fraction between 0 and 1.
func (p *parser) ratio(dst **float64) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return p.errorf(n, "want a fraction between 0 and 1 (0.01 is one in a hundred), not %q", v)
		}
		*dst = &f
		return nil
	}
}

// url decodes an http:// or https:// URL with a host.
func (p *parser) url(dst *string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return p.errorf(n, "want a URL such as http://127.0.0.1:4317 (http: plaintext, https: TLS), not %q", v)
		}
		*dst = v
		return nil
	}
}

func (p *parser) duration(dst *time.Duration) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return p.errorf(n, "want a duration such as 5s or 250ms, not %q", v)
		}
		*dst = d
		return nil
	}
}
