// Package redis is the Redis online store (standalone or Cluster): one
// packed value per (class, entity) holding every cached feature of that
// entity, read with one MGET and merged on write by a Lua script that keeps,
// per feature, the value observed later. docs/STORES.md has the layout.
//
// It knows nothing of feature classes beyond their names, nor of
// staleness: the planner decides what is fresh enough.
package redis

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fletch-engine/fletch/stores"
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
}

var _ stores.OnlineStore = (*Store)(nil)

// mergeScript stores, per feature, the newer of the stored and the given
// value (the given one at equal times), leaving the entity's other features
// as they are. Both are packed entities; the observation time is the first
// 8 bytes of a value, compared as two 32-bit halves because Lua's string
// comparison follows the server's locale and its numbers are doubles.
const mergeScript = `
local function entries(s)
  local names, values, pos = {}, {}, 1
  while pos <= #s do
    local nlen = struct.unpack('>I2', s, pos)
    local name = string.sub(s, pos + 2, pos + 1 + nlen)
    pos = pos + 2 + nlen
    local vlen = struct.unpack('>I4', s, pos)
    names[#names + 1] = name
    values[name] = string.sub(s, pos + 4, pos + 3 + vlen)
    pos = pos + 4 + vlen
  end
  return names, values
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
local old_names, old = entries(stored)
local new_names, new = entries(ARGV[1])
local out = {}
local function put(name, value)
  out[#out + 1] = struct.pack('>I2', #name) .. name .. struct.pack('>I4', #value) .. value
end
for _, name in ipairs(old_names) do
  local v = new[name]
  if v == nil or older(v, old[name]) then v = old[name] end
  put(name, v)
end
for _, name in ipairs(new_names) do
  if old[name] == nil then put(name, new[name]) end
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
func (s *Store) Close() error { return s.client.Close() }

// entityKeys returns the Redis key of each entity key; "" for a null one.
func (s *Store) entityKeys(class string, keys arrow.Array) ([]string, error) {
	out := make([]string, keys.Len())
	base := s.prefix + class + ":"
	for i := range out {
		key, ok, err := stores.EntityKey(keys, i)
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		if ok {
			out[i] = base + key
		}
	}
	return out, nil
}

// Get reads every key's packed entity in one round trip: one MGET on a
// standalone server, one pipeline of GETs on a Cluster (whose MGET cannot
// cross slots), and decodes the asked features straight into builders.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rkeys, err := s.entityKeys(class, keys)
	if err != nil {
		return nil, err
	}
	blobs, err := s.read(ctx, rkeys)
	if err != nil {
		return nil, fmt.Errorf("redis store: get %s (%d keys) from %s: %w", class, len(rkeys), s.addrs, err)
	}

	vb, err := stores.NewValuesBuilder(mem, want, len(rkeys))
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	defer vb.Release()
	n := want.NumFields()
	index := make(map[string]int, n)
	for i, f := range want.Fields() {
		index[f.Name] = i
	}
	// Entities of a class mostly store their features in the same order:
	// the feature at each entry position is remembered from the last
	// entity, and the map is asked only where it differs.
	type hint struct {
		name string
		i    int
	}
	var hints []hint
	found := make([][]byte, n)
	for r, blob := range blobs {
		clear(found)
		err := unpack(blob, func(j int, name string, value []byte) {
			if j == len(hints) {
				hints = append(hints, hint{})
			}
			if hints[j].name != name {
				i, ok := index[name]
				if !ok {
					i = -1
				}
				hints[j] = hint{name, i}
			}
			if i := hints[j].i; i >= 0 {
				found[i] = value
			}
		})
		if err != nil {
			return nil, fmt.Errorf("redis store: %s: %w", rkeys[r], err)
		}
		for i, enc := range found {
			if err := vb.Append(i, enc); err != nil {
				return nil, fmt.Errorf("redis store: %s: %w", rkeys[r], err)
			}
		}
	}
	return vb.Finish(), nil
}

// read answers the stored bytes of each key, "" where nothing is stored
// (or the key is "", a null entity key).
func (s *Store) read(ctx context.Context, rkeys []string) ([]string, error) {
	out := make([]string, len(rkeys))
	asked := make([]string, 0, len(rkeys))
	at := make([]int, 0, len(rkeys))
	for i, k := range rkeys {
		if k != "" {
			asked = append(asked, k)
			at = append(at, i)
		}
	}
	if len(asked) == 0 {
		return out, nil
	}
	if !s.cluster {
		vals, err := s.client.MGet(ctx, asked...).Result()
		if err != nil {
			return nil, err
		}
		for j, v := range vals {
			if v, ok := v.(string); ok {
				out[at[j]] = v
			}
		}
		return out, nil
	}
	cmds := make([]*goredis.StringCmd, len(asked))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, k := range asked {
			cmds[j] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	for j, c := range cmds {
		// err is the first command's error only: a missing key's Nil may
		// hide a later key's real one.
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("%s: %w", asked[j], err)
		}
		out[at[j]] = c.Val()
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
		buf = buf[:0]
		for c, col := range values.Columns() {
			if buf, err = pack(buf, values.ColumnName(c), col, r, observed[r]); err != nil {
				return fmt.Errorf("redis store: feature %s: %w", values.ColumnName(c), err)
			}
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

// A packed entity is a sequence of entries, one per cached feature:
//
//	name length  2 bytes, big-endian
//	name
//	value length 4 bytes, big-endian
//	value        stores.AppendValue's encoding
func pack(buf []byte, name string, col arrow.Array, row int, observed time.Time) ([]byte, error) {
	if len(name) > 0xffff {
		return nil, fmt.Errorf("name longer than %d bytes", 0xffff)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(name)))
	buf = append(buf, name...)
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf, err := stores.AppendValue(buf, col, row, observed)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf, nil
}

var errCorrupt = errors.New("stored entity is not a packed entity (written by something else than fletch?)")

// unpack calls each for every entry of a packed entity, with the entry's
// position. The names and values it passes alias blob (no copy); the values
// are only read.
func unpack(blob string, each func(j int, name string, value []byte)) error {
	b := unsafe.Slice(unsafe.StringData(blob), len(blob))
	for j := 0; len(b) > 0; j++ {
		if len(b) < 2 {
			return errCorrupt
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n+4 {
			return errCorrupt
		}
		name := blob[len(blob)-len(b)+2:][:n]
		b = b[2+n:]
		v := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+v {
			return errCorrupt
		}
		each(j, name, b[4:4+v])
		b = b[4+v:]
	}
	return nil
}
