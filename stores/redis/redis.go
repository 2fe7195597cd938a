// Package redis is the Redis online store (standalone or Cluster): one
// packed entity (stores/packed) per (class, entity) holding every cached
// feature of that entity, read with one MGET and merged on write by a Lua
// script that keeps, per feature, the value observed later, and per class
// a hash numbering its features (packed.Directory). docs/STORES.md has the
// layout.
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
	"strconv"
	"strings"
	"sync"
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
	// dirs: class → *packed.Directory, kept in the hash slotsKey(class)
	dirs sync.Map
	// mgets reads Get's replies on a standalone server (nil on a Cluster).
	mgets *mgetPool
}

var _ stores.OnlineStore = (*Store)(nil)

// mergeScript stores, per slot, the newer of the stored and the given
// value (the given one at equal times), leaving the entity's other slots
// as they are. Both are packed entities (stores/packed; a stored entity of
// an older layout or another directory counts as empty: its values read as
// missing anyway); the merged entity groups its values by observation time
// again, groups by their lowest slot. It is packed.Merge in Lua, to the
// byte (TestMergeScriptIsPackedMerge), so that the entity is merged where
// it is stored, in one round trip. Times are compared as two 32-bit halves
// because Lua's string comparison follows the server's locale and its
// numbers are doubles.
const mergeScript = `
local given = ARGV[1]
local stored = redis.call('GET', KEYS[1])
if not stored or string.byte(stored, 1) ~= 3 or string.sub(stored, 2, 5) ~= string.sub(given, 2, 5) then
  redis.call('SET', KEYS[1], given)
  return 1
end
local function older(a, b)
  local ah, al = struct.unpack('>I4I4', a)
  local bh, bl = struct.unpack('>I4I4', b)
  return ah < bh or (ah == bh and al < bl)
end
-- The usual write-back writes the features it wrote last time, newer:
-- one group in each, the same slots. Then the merge is the given entity
-- as it is, and its values need no unpacking: only their lengths are read,
-- to find where the group ends.
-- length reads the length of the value at pos: the length, and where the
-- value starts.
local function length(s, pos)
  local n = string.byte(s, pos)
  if n == 255 then
    return (struct.unpack('>I4', s, pos + 1)), pos + 5
  end
  return n, pos + 1
end
local function single(s)
  if #s < 18 then
    return nil
  end
  local span = struct.unpack('>I2', s, 16)
  local bitmap = 18
  local values = bitmap + math.floor((span + 7) / 8)
  local pos = values
  for i = bitmap, values - 1 do
    local b = string.byte(s, i)
    while b ~= 0 do
      if b % 2 == 1 then
        local n
        n, pos = length(s, pos)
        pos = pos + n
      end
      b = math.floor(b / 2)
    end
  end
  if pos ~= #s + 1 then
    return nil
  end
  return values
end
local sv, gv = single(stored), single(given)
if sv and sv == gv and string.sub(stored, 14, sv - 1) == string.sub(given, 14, gv - 1)
    and not older(string.sub(given, 6, 13), string.sub(stored, 6, 13)) then
  redis.call('SET', KEYS[1], given)
  return 1
end
local values, times, slots = {}, {}, {}
local function read(s)
  local pos = 6
  while pos <= #s do
    local at = string.sub(s, pos, pos + 7)
    local first, span = struct.unpack('>I2I2', s, pos + 8)
    local bitmap = pos + 12
    pos = bitmap + math.floor((span + 7) / 8)
    for k = 0, span - 1 do
      if bit.band(string.byte(s, bitmap + math.floor(k / 8)), bit.lshift(1, k % 8)) ~= 0 then
        local n
        n, pos = length(s, pos)
        local slot = first + k
        if times[slot] == nil then
          slots[#slots + 1] = slot
        end
        if times[slot] == nil or not older(at, times[slot]) then
          values[slot] = string.sub(s, pos, pos + n - 1)
          times[slot] = at
        end
        pos = pos + n
      end
    end
  end
end
read(stored)
read(given)
table.sort(slots)
local order, groups = {}, {}
for _, slot in ipairs(slots) do
  local at = times[slot]
  local g = groups[at]
  if g == nil then
    g = {first = slot, slots = {}}
    groups[at] = g
    order[#order + 1] = at
  end
  g.slots[#g.slots + 1] = slot
end
local out = {string.sub(given, 1, 5)}
for _, at in ipairs(order) do
  local g = groups[at]
  local span = g.slots[#g.slots] - g.first + 1
  local bitmap = {}
  for i = 1, math.floor((span + 7) / 8) do bitmap[i] = 0 end
  local vals = {}
  for _, slot in ipairs(g.slots) do
    local k = slot - g.first
    local i = math.floor(k / 8) + 1
    bitmap[i] = bit.bor(bitmap[i], bit.lshift(1, k % 8))
    local v = values[slot]
    if #v < 255 then
      vals[#vals + 1] = string.char(#v) .. v
    else
      vals[#vals + 1] = string.char(255) .. struct.pack('>I4', #v) .. v
    end
  end
  for i = 1, #bitmap do bitmap[i] = string.char(bitmap[i]) end
  out[#out + 1] = at .. struct.pack('>I2I2', g.first, span) .. table.concat(bitmap) .. table.concat(vals)
end
redis.call('SET', KEYS[1], table.concat(out))
return 1
`

// slotsScript gives the features in ARGV[2:] of the directory in hash
// KEYS[1] their slots, the next free ones for those without (made with id
// ARGV[1] if it does not exist), and answers the directory's id then the
// slots: every process writing a class numbers its features alike.
const slotsScript = `
redis.call('HSETNX', KEYS[1], '#id', ARGV[1])
local out = {redis.call('HGET', KEYS[1], '#id')}
for i = 2, #ARGV do
  local slot = redis.call('HGET', KEYS[1], ARGV[i])
  if not slot then
    slot = redis.call('HINCRBY', KEYS[1], '#next', 1) - 1
    if slot >= 65536 then
      return redis.error_reply('a class has at most 65536 (feature, type) slots')
    end
    redis.call('HSET', KEYS[1], ARGV[i], slot)
  end
  out[i] = tonumber(slot)
end
return out
`

var slots = goredis.NewScript(slotsScript)

// slotsKey is the hash of class's slot directory: beside its entities'
// keys (prefix class ":i:" or ":s:" key), never one of them.
func (s *Store) slotsKey(class string) string { return s.prefix + class + ":slots" }

// dir is class's slot directory.
func (s *Store) dir(class string) *packed.Directory {
	if d, ok := s.dirs.Load(class); ok {
		return d.(*packed.Directory)
	}
	d, _ := s.dirs.LoadOrStore(class, packed.NewDirectory(slotSource{s, s.slotsKey(class)}))
	return d.(*packed.Directory)
}

// slotSource keeps a class's packed.Directory in a Redis hash: feature
// "name:type" → slot, "#id" the directory's id, "#next" the next free
// slot.
type slotSource struct {
	s   *Store
	key string
}

func (src slotSource) Assign(ctx context.Context, newID string, features []string) (string, []int, error) {
	args := make([]any, 0, 1+len(features))
	args = append(args, newID)
	for _, f := range features {
		args = append(args, f)
	}
	res, err := slots.Run(ctx, src.s.client, []string{src.key}, args...).Slice()
	if err != nil {
		return "", nil, fmt.Errorf("redis store: %s: %w", src.key, err)
	}
	if len(res) != 1+len(features) {
		return "", nil, fmt.Errorf("redis store: %s: %d answers for %d features", src.key, len(res), len(features))
	}
	id, _ := res[0].(string)
	out := make([]int, len(features))
	for i := range out {
		n, ok := res[1+i].(int64)
		if !ok {
			return "", nil, fmt.Errorf("redis store: %s: slot %v is not a number", src.key, res[1+i])
		}
		out[i] = int(n)
	}
	return id, out, nil
}

func (src slotSource) Load(ctx context.Context) (string, map[string]int, error) {
	all, err := src.s.client.HGetAll(ctx, src.key).Result()
	if err != nil {
		return "", nil, fmt.Errorf("redis store: %s: %w", src.key, err)
	}
	out := make(map[string]int, len(all))
	for f, v := range all {
		if strings.HasPrefix(f, "#") {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", nil, fmt.Errorf("redis store: %s: slot %q of %s is not a number", src.key, v, f)
		}
		out[f] = n
	}
	return all["#id"], out, nil
}

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
			s.mgets = newMgetPool(o.Addrs[0], o.Password, o.DB, uo.DialTimeout, 0, idle, idle)
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

// Reach checks that every server o names answers PING, without loading
// the store's script or touching a key (fletch validate --connect).
func Reach(ctx context.Context, o Options) error {
	if len(o.Addrs) == 0 {
		return errors.New("redis store: no address (want host:port, or several for a Cluster)")
	}
	var errs []error
	for _, addr := range o.Addrs {
		c := goredis.NewClient(&goredis.Options{Addr: addr, Password: o.Password, DB: o.DB, MaxRetries: -1, DialTimeout: 2 * time.Second})
		if err := c.Ping(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("redis store: cannot reach %s: %w", addr, err))
		}
		c.Close()
	}
	return errors.Join(errs...)
}

// Ping checks that the server answers (stores.Pinger).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis store: cannot reach %s: %w", s.addrs, err)
	}
	return nil
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
	dir := s.dir(class)
	f, err := dir.Fields(ctx, want, false)
	if err != nil {
		return nil, fmt.Errorf("redis store: %s: %w", class, err)
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
	u := packed.NewUnpacker(f)
	for r, blob := range blobs {
		if err := u.Unpack(vb, r, blob); err != nil {
			return nil, fmt.Errorf("redis store: %s: %w", rkeys[r], err)
		}
	}
	if u.Foreign() > 0 {
		dir.Stale()
	}
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
		s.mgets.discard(c)
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
	f, err := s.dir(class).Fields(ctx, values.Schema(), true)
	if err != nil {
		return fmt.Errorf("redis store: %s: %w", class, err)
	}
	type write struct{ key, blob string }
	writes := make([]write, 0, len(rkeys))
	var buf []byte
	for r, k := range rkeys {
		if k == "" {
			continue
		}
		if buf, err = packed.Append(buf[:0], observed[r], f, values, r); err != nil {
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
