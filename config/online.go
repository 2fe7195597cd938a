package config

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// OnlineStoreConfig is `online_store:`.
type OnlineStoreConfig struct {
	Kind string // "memory", "redis", "dynamodb" or "postgres"

	// Addrs are the Redis servers: one (`addr:`) for a standalone server,
	// several (`addrs:`) for a Cluster's seed nodes.
	Addrs    []string
	Password string
	DB       int
	// Prefix starts every Redis key fletch writes, so that several
	// repositories can share a server.
	Prefix string
	// PoolSize is the connection pool's size (redis, postgres).
	PoolSize int

	// Table is the DynamoDB table, or the PostgreSQL table of entities;
	// Endpoint overrides the AWS endpoint (DynamoDB Local); CreateTable
	// creates the DynamoDB table when missing.
	Table       string
	Region      string
	Endpoint    string
	CreateTable bool

	// DSN is the PostgreSQL connection string or URL.
	DSN string

	// Breaker is the store's circuit breaker: while it is open, reads
	// are answered as misses (the features are computed) and write-backs
	// fail, at once.
	Breaker BreakerConfig

	Line int // where the section is, for errors
}

// onlineStoreKeys are the keys of `online_store:` and the kinds that take
// each (none for every kind).
var onlineStoreKeys = map[string][]string{
	"kind": nil, "breaker": nil, "addr": {"redis"}, "addrs": {"redis"}, "password": {"redis"}, "db": {"redis"}, "prefix": {"redis"},
	"pool_size": {"redis", "postgres"}, "table": {"dynamodb", "postgres"}, "region": {"dynamodb"}, "endpoint": {"dynamodb"},
	"create_table": {"dynamodb"}, "dsn": {"postgres"},
}

func (p *parser) onlineStore(n *yaml.Node, sc *OnlineStoreConfig) error {
	*sc = OnlineStoreConfig{Line: n.Line}
	var addr string
	present := map[string]*yaml.Node{}
	decoders := map[string]func(*yaml.Node) error{
		"kind":         p.kind(&sc.Kind, "memory", "redis", "dynamodb", "postgres"),
		"addr":         p.str(&addr),
		"addrs":        p.strs(&sc.Addrs),
		"password":     p.str(&sc.Password),
		"db":           p.integer(&sc.DB),
		"prefix":       p.str(&sc.Prefix),
		"pool_size":    p.integer(&sc.PoolSize),
		"table":        p.str(&sc.Table),
		"region":       p.str(&sc.Region),
		"endpoint":     p.str(&sc.Endpoint),
		"create_table": p.boolean(&sc.CreateTable),
		"dsn":          p.str(&sc.DSN),
		"breaker":      p.breaker(&sc.Breaker, "online_store.breaker"),
	}
	fields := make(map[string]func(*yaml.Node) error, len(decoders))
	for key, decode := range decoders {
		fields[key] = func(v *yaml.Node) error {
			present[key] = v
			return decode(v)
		}
	}
	if err := p.mapping(n, "online_store", fields); err != nil {
		return err
	}
	if sc.Kind == "" {
		return p.errorf(n, `online_store has no kind ("memory", "redis", "dynamodb" or "postgres")`)
	}
	for key, v := range present {
		if kinds := onlineStoreKeys[key]; kinds != nil && !slices.Contains(kinds, sc.Kind) {
			return p.errorf(v, "%s is a key of %s online stores, not of %s ones", key, strings.Join(kinds, " and "), sc.Kind)
		}
	}
	switch sc.Kind {
	case "redis":
		switch {
		case addr != "" && len(sc.Addrs) > 0:
			return p.errorf(present["addr"], "give the redis online store addr (one server) or addrs (a Cluster), not both")
		case addr != "":
			sc.Addrs = []string{addr}
		case len(sc.Addrs) == 0:
			return p.errorf(n, "the redis online store has no addr (host:port), nor addrs for a Cluster")
		}
	case "dynamodb":
		if sc.Table == "" {
			return p.errorf(n, "the dynamodb online store has no table")
		}
	case "postgres":
		if sc.DSN == "" {
			return p.errorf(n, "the postgres online store has no dsn (a libpq connection string or URL)")
		}
	}
	return nil
}

func (p *parser) boolean(dst *bool) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		v, err := p.scalar(n)
		if err != nil {
			return err
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p.errorf(n, "want true or false, not %q", v)
		}
		*dst = b
		return nil
	}
}
