// Package redis is the Redis online store (standalone or Cluster): one
// packed entity (stores/packed) per (class, entity) holding every cached
// feature of that entity, read with one MGET and merged on write by a Lua
// script that keeps, per feature, the value observed later. docs/STORES.md
// has the layout.
//
// It knows nothing of feature classes beyond their names, nor of
// staleness: the planner decides what is fresh enough.
package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/packed"
)

// Options configures the connection.
type Options struct {
	// Addrs is one host:port for a standalone server (a Cluster node is
	// recognised too), or several for a Cluster.
	Addrs    []string
	Password string
	DB       int // standalone only
	// Prefix starts every key, e.g. "fletch:" on a shared server.
	Prefix string
	// PoolSize is the number of connections per node (0: 10 per CPU).
	PoolSize int
}

// Store is a stores.OnlineStore over Redis. It is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	cluster bool
	prefix  string
	addrs   string // for error messages
	// positions: where the asked features sit in the entities read
	positions packed.Positions
	// mgets reads Get's replies on a standalone server (nil on a Cluster).
	mgets *mgetPool
}

var _ stores.OnlineStore = (*Store)(nil)

// mergeScript stores, per feature, the newer of the stored and the given
// value (the given one at equal times), leaving the entity's other features
// as they are. Both are packed entities (stores/packed; a stored entity of
// an older layout counts as empty: its values read as missing anyway); the
// merged entity groups its values by observation time again. It is
// packed.Merge in Lua, to the byte (TestMergeScriptIsPackedMerge), so
// that the entity is merged where it is stored, in one round trip. Times
// are compared as two 32-bit halves because Lua's string comparison
// follows the server's locale and its numbers are doubles.
const mergeScript = `
local function entries(s)
  local names, values, times, pos = {}, {}, {}, 2
  if string.byte(s, 1) ~= 2 then return names, values, times end
  while pos <= #s do
    local at = string.sub(s, pos, pos + 7)
    local count = struct.unpack('>I2', s, pos + 8)
    pos = pos + 10
    for _ = 1, count do
      local nlen = struct.unpack('>I2', s, pos)
      local name = string.sub(s, pos + 2, pos + 1 + nlen)
      pos = pos + 2 + nlen
      local vlen = struct.unpack('>I4', s, pos)
      names[#names + 1] = name
      values[name] = string.sub(s, pos + 4, pos + 3 + vlen)
      times[name] = at
      pos = pos + 4 + vlen
    end
  end
  return names, values, times
end
local function older(a, b)
  local ah, al = struct.unpack('>I4I4', a)
  local bh, bl = struct.unpack('>I4I4', b)
  return ah < bh or (ah == bh and al < bl)
end
local stored = redis.call('GET', KEYS[1])
if not stored then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
local old_names, old, old_at = entries(stored)
local new_names, new, new_at = entries(ARGV[1])
local order, groups = {}, {}
local function put(name, value, at)
  local g = groups[at]
  if g == nil then
    g = {}
    groups[at] = g
    order[#order + 1] = at
  end
  g[#g + 1] = struct.pack('>I2', #name) .. name .. struct.pack('>I4', #value) .. value
end
for _, name in ipairs(old_names) do
  if new[name] == nil or older(new_at[name], old_at[name]) then
    put(name, old[name], old_at[name])
  else
    put(name, new[name], new_at[name])
  end
end
for _, name in ipairs(new_names) do
  if old[name] == nil then put(name, new[name], new_at[name]) end
end
local out = {string.char(2)}
for _, at in ipairs(order) do
  out[#out + 1] = at .. struct.pack('>I2', #groups[at]) .. table.concat(groups[at])
end
redis.call('SET', KEYS[1], table.concat(out))
return 1
`

var mergeSHA = func() string {
	h := sha1.Sum([]byte(mergeScript))
	return hex.EncodeToString(h[:])
}()

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redis store: no address (want host:port, or several for a Cluster)")
	}
	s := &Store{prefix: o.Prefix, addrs: strings.Join(o.Addrs, ",")}
	uo := &goredis.UniversalOptions{
		Addrs:    o.Addrs,
		Password: o.Password,
		DB:       o.DB,
		PoolSize: o.PoolSize,
		// A cache read that waits on a dead server only delays the answer
		// the planner can compute anyway: fail after one retry.
		MaxRetries:            1,
		DialTimeout:           2 * time.Second,
		ContextTimeoutEnabled: true,
	}
	s.cluster = len(o.Addrs) > 1
	if !s.cluster {
		c := goredis.NewClient(uo.Simple())
		info, err := c.Info(ctx, "cluster").Result()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("redis store: cannot reach %s: %w", s.addrs, err)
		}
		s.cluster = strings.Contains(info, "cluster_enabled:1")
		if !s.cluster {
			s.client = c
			idle := o.PoolSize
			if idle == 0 {
				idle = 10 * runtime.GOMAXPROCS(0) // go-redis's default pool
			}
			s.mgets = &mgetPool{addr: o.Addrs[0], password: o.Password, db: o.DB, dialTimeout: uo.DialTimeout, maxIdle: idle}
		} else {
			c.Close()
		}
	}
	if s.cluster {
		if o.DB != 0 {
			return nil, fmt.Errorf("redis store: %s is a Cluster, which has only database 0, not %d", s.addrs, o.DB)
		}
		s.client = goredis.NewClusterClient(uo.Cluster())
	}
	if err := s.loadScript(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("redis store: cannot reach %s: %w", s.addrs, err)
	}
	return s, nil
}

func (s *Store) loadScript(ctx context.Context) error {
	return s.client.ScriptLoad(ctx, mergeScript).Err() // on every shard of a Cluster
}

// Close closes the connections.
func (s *Store) Close() error {
	if s.mgets != nil {
		s.mgets.close()
	}
	return s.client.Close()
}

// entityKeys returns the Redis key of each entity key; "" for a null one.
// The keys share one allocation: a Get of 10,000 entities builds no
// string per key.
func (s *Store) entityKeys(class string, keys arrow.Array) ([]string, error) {
	if err := stores.CheckKeys(keys); err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	base := s.prefix + class + ":"
	buf := make([]byte, 0, keys.Len()*(len(base)+8))
	ends := make([]int, keys.Len())
	for i := range ends {
		start := len(buf)
		buf, _, _ = stores.AppendEntityKey(append(buf, base...), keys, i)
		if len(buf) == start+len(base) { // a null key
			buf = buf[:start]
		}
		ends[i] = len(buf)
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	out := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out, nil
}

// Get reads every key's packed entity in one round trip: one MGET on a
// standalone server, one pipeline of GETs on a Cluster (whose MGET cannot
// cross slots), and decodes the asked features straight into the answer.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rkeys, err := s.entityKeys(class, keys)
	if err != nil {
		return nil, err
	}
	blobs, done, err := s.read(ctx, rkeys)
	defer done()
	if err != nil {
		return nil, fmt.Errorf("redis store: get %s (%d keys) from %s: %w", class, len(rkeys), s.addrs, err)
	}
	vb, err := stores.NewValuesBuilder(mem, want, len(rkeys))
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	defer vb.Release()
	u := s.positions.Unpacker(want)
	for r, blob := range blobs {
		if err := u.Unpack(vb, r, blob); err != nil {
			return nil, fmt.Errorf("redis store: %s: %w", rkeys[r], err)
		}
	}
	s.positions.Learn(u)
	return vb.Finish(), nil
}

// read answers the stored bytes of each key, "" where nothing is stored
// (or the key is "", a null entity key). They may alias a connection's
// buffer until done is called.
func (s *Store) read(ctx context.Context, rkeys []string) (_ []string, done func(), err error) {
	done = func() {}
	out := make([]string, len(rkeys))
	asked := make([]string, 0, len(rkeys))
	var at []int // the row of each key asked, when some are null
	for i, k := range rkeys {
		if k == "" {
			if at == nil {
				at = make([]int, 0, len(rkeys))
				for j := range i {
					at = append(at, j)
				}
			}
			continue
		}
		asked = append(asked, k)
		if at != nil {
			at = append(at, i)
		}
	}
	if len(asked) == 0 {
		return out, done, nil
	}
	var vals []string
	if s.mgets != nil {
		vals, done, err = s.mget(ctx, asked)
	} else {
		vals, err = s.pipelinedGets(ctx, asked)
	}
	if err != nil {
		return nil, done, err
	}
	for j, v := range vals {
		if at != nil {
			j = at[j]
		}
		out[j] = v
	}
	return out, done, nil
}

// mget runs one MGET on a connection of s.mgets; the values alias the
// connection's buffer until done. A connection that fails is closed, and
// the MGET is tried once more on a fresh one (the server may have
// restarted since the connection was idle).
func (s *Store) mget(ctx context.Context, keys []string) (vals []string, done func(), err error) {
	for try := 0; ; try++ {
		c, err := s.mgets.get(ctx)
		if err != nil {
			return nil, func() {}, err
		}
		vals, err := c.mget(ctx, keys)
		if err == nil {
			return vals, func() { s.mgets.put(c) }, nil
		}
		c.nc.Close()
		if try == 1 || ctx.Err() != nil {
			return nil, func() {}, err
		}
		s.mgets.close() // the idle ones are likely as stale

	}
}

// pipelinedGets reads keys with one GET each, in one pipeline: a Cluster's
// MGET cannot cross slots.
func (s *Store) pipelinedGets(ctx context.Context, keys []string) ([]string, error) {
	cmds := make([]*goredis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, k := range keys {
			cmds[j] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([]string, len(keys))
	for j, c := range cmds {
		// err is the first command's error only: a missing key's Nil may
		// hide a later key's real one.
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("%s: %w", keys[j], err)
		}
		out[j] = c.Val()
	}
	return out, nil
}

// Set packs each entity's values and merges them into the stored ones
// with one EVALSHA per entity, all in one pipeline.
func (s *Store) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(keys.Len()) != values.NumRows() || len(observed) != keys.Len() {
		return fmt.Errorf("redis store: %d keys, %d rows of values and %d observation times; want as many of each", keys.Len(), values.NumRows(), len(observed))
	}
	rkeys, err := s.entityKeys(class, keys)
	if err != nil {
		return err
	}
	type write struct{ key, blob string }
	writes := make([]write, 0, len(rkeys))
	var buf []byte
	for r, k := range rkeys {
		if k == "" {
			continue
		}
		if buf, err = packed.Append(buf[:0], observed[r], values, r); err != nil {
			return fmt.Errorf("redis store: %w", err)
		}
		writes = append(writes, write{k, string(buf)})
	}
	if len(writes) == 0 {
		return nil
	}
	run := func() ([]goredis.Cmder, error) {
		return s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, w := range writes {
				p.EvalSha(ctx, mergeSHA, []string{w.key}, w.blob)
			}
			return nil
		})
	}
	_, err = run()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// The server restarted or its scripts were flushed; merging the
		// same values again is harmless, so the whole pipeline reruns.
		if err = s.loadScript(ctx); err == nil {
			_, err = run()
		}
	}
	if err != nil {
		return fmt.Errorf("redis store: set %s (%d keys) on %s: %w", class, len(writes), s.addrs, err)
	}
	return nil
}
