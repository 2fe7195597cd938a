package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/packed"
	"github.com/fletch-engine/fletch/stores/storetest"
)

// open returns a store on FLETCH_TEST_REDIS under a key prefix of its own,
// whose keys are deleted when the test ends.
func open(t testing.TB) *Store {
	addr := storetest.Server(t, "FLETCH_TEST_REDIS")
	prefix := fmt.Sprintf("fletchtest:%s:%d:", t.Name(), time.Now().UnixNano())
	s, err := Open(context.Background(), Options{Addrs: []string{addr}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := s.client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			s.client.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.OnlineStore { return open(t) })
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// The stored bytes are the layout docs/STORES.md describes, read here
// with a plain GET and parsed by hand.
func TestLayout(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t)
	keys := storetest.Int64Keys(mem, 42)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"a", "bb"}, 1, func(_, i int) float64 { return float64(i) + 0.5 })
	defer rec.Release()
	if err := s.Set(context.Background(), "User", keys, rec, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw, err := s.client.Get(ctx, s.prefix+"User:i:42").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.client.HGetAll(ctx, s.prefix+"User:slots").Result()
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 3 {
		t.Fatalf("layout byte %d, want 3", raw[0])
	}
	if got := hex.EncodeToString(raw[1:5]); got != dir["#id"] {
		t.Errorf("directory id %s, want the hash's %s", got, dir["#id"])
	}
	if dir["a:float64"] != "0" || dir["bb:float64"] != "1" || dir["#next"] != "2" {
		t.Errorf("directory %v, want a:float64 0, bb:float64 1, #next 2", dir)
	}
	raw = raw[5:]
	if at, err := stores.ObservedAt(raw); err != nil || !at.Equal(t0) {
		t.Errorf("group observed %v, %v; want %v", at, err, t0)
	}
	if first, span := binary.BigEndian.Uint16(raw[8:]), binary.BigEndian.Uint16(raw[10:]); first != 0 || span != 2 || raw[12] != 0b11 {
		t.Errorf("group of slots %d + %d, bitmap %08b; want 0 + 2, 00000011", first, span, raw[12])
	}
	raw = raw[13:]
	for i := range 2 {
		// 9 bytes: present, then 8 bytes little-endian
		if raw[0] != 9 || raw[1] != 1 || math.Float64frombits(binary.LittleEndian.Uint64(raw[2:])) != float64(i)+0.5 {
			t.Errorf("value %d: % x", i, raw[:10])
		}
		raw = raw[10:]
	}
	if len(raw) != 0 {
		t.Errorf("%d bytes after the group", len(raw))
	}
}

func TestErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()

	// A port nothing listens on: the error names the address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no address"},
		{Options{Addrs: []string{dead}}, "cannot reach " + dead},
	} {
		if _, err := Open(ctx, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v): err = %v, want %q", c.o, err, c.want)
		}
	}

	// A key holding something that is not a packed entity: another
	// program's value, or one cut short.
	s := open(t)
	keys := storetest.Int64Keys(mem, 1)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"a"}, 1, func(_, _ int) float64 { return 1 })
	defer rec.Release()
	if err := s.Set(ctx, "User", keys, rec, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	whole, err := s.client.Get(ctx, s.prefix+"User:i:1").Result()
	if err != nil {
		t.Fatal(err)
	}
	schema := rec.Schema()
	for _, v := range []string{"hello", whole[:len(whole)-1]} {
		if err := s.client.Set(ctx, s.prefix+"User:i:1", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, mem, "User", keys, schema); err == nil || !strings.Contains(err.Error(), "User:i:1") || !strings.Contains(err.Error(), "not a packed entity") {
			t.Errorf("Get of %q: err = %v", v, err)
		}
	}
}

// An entity of the layout before groups (name, value with its own time)
// reads as missing, and a Set replaces it.
func TestOlderLayoutReadsMissing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	keys := storetest.Int64Keys(mem, 1)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"v", "w"}, 1, func(_, i int) float64 { return float64(i) + 0.5 })
	defer rec.Release()
	v1 := []byte{0, 1, 'v', 0, 0, 0, 0}
	v1, err := stores.AppendValue(v1, rec.Column(0), 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(v1[3:], uint32(len(v1)-7))
	if err := s.client.Set(ctx, s.prefix+"C:i:1", v1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, mem, "C", keys, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if got.Values.Column(0).IsValid(0) || got.Observed[0].IsValid(0) {
		t.Errorf("older layout read as %v observed %v, want missing", got.Values.Column(0), got.Observed[0])
	}
	got.Release()
	if err := s.Set(ctx, "C", keys, rec, []time.Time{t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, mem, "C", keys, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if v, w := got.Values.Column(0).String(), got.Values.Column(1).String(); v != "[0.5]" || w != "[1.5]" {
		t.Errorf("after a Set over the older layout: v %s w %s, want [0.5] [1.5]", v, w)
	}
}

// A class's slot directory lost (its hash evicted or deleted) and made
// again by another process numbers features anew: the entities written
// before read as missing in every process, never with another feature's
// value, and a process that knew the old directory reads the new one's
// entities once it has loaded it again.
func TestDirectoryLost(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	a := open(t)
	b, err := Open(ctx, Options{Addrs: []string{a.addrs}, Prefix: a.prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := storetest.Int64Keys(mem, 1, 2)
	defer keys.Release()
	x := storetest.FloatRecord(mem, []string{"x"}, 2, func(r, _ int) float64 { return float64(r) + 0.5 })
	defer x.Release()
	y := storetest.FloatRecord(mem, []string{"y"}, 2, func(r, _ int) float64 { return float64(r) + 100 })
	defer y.Release()
	both := arrow.NewSchema([]arrow.Field{x.Schema().Field(0), y.Schema().Field(0)}, nil)
	get := func(s *Store) string {
		t.Helper()
		got, err := s.Get(ctx, mem, "C", keys, both)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Release()
		return got.Values.Column(0).String() + " " + got.Values.Column(1).String()
	}

	if err := a.Set(ctx, "C", keys, x, []time.Time{t0, t0}); err != nil { // x is slot 0
		t.Fatal(err)
	}
	if got := get(a); got != "[0.5 1.5] [(null) (null)]" {
		t.Fatalf("before: %s", got)
	}
	if err := a.client.Del(ctx, a.slotsKey("C")).Err(); err != nil {
		t.Fatal(err)
	}
	// b makes the directory again: y is slot 0 now. Key 1 is written
	// over, key 2 keeps its entity of the old directory.
	ones := storetest.Int64Keys(mem, 1)
	defer ones.Release()
	y1 := y.NewSlice(0, 1)
	defer y1.Release()
	if err := b.Set(ctx, "C", ones, y1, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	if got := get(b); got != "[(null) (null)] [100 (null)]" {
		t.Errorf("the process that made the directory anew reads %s, want [(null) (null)] [100 (null)]", got)
	}
	// a still knows the old directory: what it reads is old or missing,
	// never y's value as x; once it loads the new one it reads b's.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := get(a)
		if got == "[(null) (null)] [100 (null)]" {
			break
		}
		if got != "[(null) 1.5] [(null) (null)]" || time.Now().After(deadline) {
			t.Fatalf("the process that knew the old directory reads %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The merge script and packed.Merge write the same bytes: random writes
// (random subsets of features in random orders, few distinct times, some
// over an entity of the older layout or another directory) merged by the script on the server
// and by packed.Merge beside it.
func TestMergeScriptIsPackedMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	rng := rand.New(rand.NewPCG(5, 8))
	names := []string{"a", "bb", "c", "dd", "e", "ff", "g", "hh"}
	dir := s.dir("M")
	want := map[string]string{} // key → what packed.Merge made of its writes
	for i := range 400 {
		key := fmt.Sprintf("%sM:i:%d", s.prefix, rng.IntN(12))
		if i < 6 {
			// an entity of the older layout, or of another directory
			old := "\x00\x01v\x00\x00\x00\x01\x00"
			if i >= 3 {
				old = "\x03dir2" + strings.Repeat("\x00", 8) + "\x00\x01\x00\x01\x01\x09\x00"
			}
			if err := s.client.Set(ctx, key, old, 0).Err(); err != nil {
				t.Fatal(err)
			}
			want[key] = old
		}
		picked := make([]string, 1+rng.IntN(len(names)))
		for j, k := range rng.Perm(len(names))[:len(picked)] {
			picked[j] = names[k]
		}
		rec := storetest.FloatRecord(mem, picked, 1, func(_, j int) float64 { return float64(i*10 + j) })
		want[key] = mergeBoth(t, s, dir, key, want[key], rec, t0.Add(time.Duration(rng.IntN(3))*time.Second))
		got, err := s.client.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != want[key] {
			t.Fatalf("write %d to %s: the script stored\n% x\npacked.Merge made\n% x", i, key, got, want[key])
		}
	}
}

// TestMergeFastPath: the script's shortcut (the given entity as it is,
// when it writes the stored entity's slots again, newer) is taken only
// when the stored entity is that one group: each sequence of writes ends
// as packed.Merge makes it. Before the shortcut checked where the stored
// group ended, a stored entity of two groups lost its second.
func TestMergeFastPath(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	dir := s.dir("F")
	type write struct {
		names []string
		after time.Duration
	}
	for i, writes := range [][]write{
		{{[]string{"a", "b"}, 0}, {[]string{"a", "b"}, time.Second}},                                   // the shortcut
		{{[]string{"a", "b"}, time.Second}, {[]string{"a", "b"}, 0}},                                   // older: merged
		{{[]string{"a", "b"}, 0}, {[]string{"c"}, time.Second}, {[]string{"a", "b"}, 2 * time.Second}}, // two groups stored
		{{[]string{"a", "b"}, 0}, {[]string{"a", "c"}, time.Second}},                                   // other slots
		{{[]string{"s"}, 0}, {[]string{"s"}, time.Second}},                                             // a long value
	} {
		key := fmt.Sprintf("%sF:i:%d", s.prefix, i)
		want := ""
		for j, w := range writes {
			rec := storetest.FloatRecord(mem, w.names, 1, func(_, k int) float64 { return float64(100*j + k) })
			if w.names[0] == "s" { // a value of 300 bytes: its length takes five
				rec.Release()
				rec = longString(mem, "s", strings.Repeat(string(rune('x'+j)), 300))
			}
			want = mergeBoth(t, s, dir, key, want, rec, t0.Add(w.after))
		}
		got, err := s.client.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("writes %d: the script stored\n% x\npacked.Merge made\n% x", i, got, want)
		}
	}
}

// mergeBoth packs rec's one row observed at at, merges it into key with
// the script, releases rec, and returns what packed.Merge makes of want
// and it.
func mergeBoth(t *testing.T, s *Store, dir *packed.Directory, key, want string, rec arrow.RecordBatch, at time.Time) string {
	t.Helper()
	ctx := context.Background()
	defer rec.Release()
	f, err := dir.Fields(ctx, rec.Schema(), true)
	if err != nil {
		t.Fatal(err)
	}
	given, err := packed.Append(nil, at, f, rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = packed.Merge(want, string(given)); err != nil {
		t.Fatal(err)
	}
	if err := s.client.EvalSha(ctx, mergeSHA, []string{key}, given).Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// longString is a one-row record of one string column.
func longString(mem memory.Allocator, name, v string) arrow.RecordBatch {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Append(v)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.BinaryTypes.String, Nullable: true}}, nil), []arrow.Array{col}, 1)
}

// After the server forgets its scripts (a restart, SCRIPT FLUSH), a Set
// loads the script again and succeeds.
func TestScriptFlushed(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	keys := storetest.Int64Keys(mem, 1, 2)
	defer keys.Release()
	for i := range 2 {
		if err := s.client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		rec := storetest.FloatRecord(mem, []string{"v"}, 2, func(r, _ int) float64 { return float64(10*i + r) })
		err := s.Set(ctx, "C", keys, rec, []time.Time{t0, t0})
		rec.Release()
		if err != nil {
			t.Fatalf("Set %d after SCRIPT FLUSH: %v", i, err)
		}
	}
	got, err := s.Get(ctx, mem, "C", keys, arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if want := "[10 11]"; got.Values.Column(0).String() != want {
		t.Errorf("got %v, want %s", got.Values.Column(0), want)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runRedis starts a redis-server of the test's own on port, without
// persistence, and waits until it answers. The caller stops it.
func runRedis(t *testing.T, port int, args ...string) *exec.Cmd {
	storetest.Server(t, "FLETCH_TEST_REDIS") // the services script installed redis-server
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i == 100 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("redis-server on port %d did not answer", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd
}

// A Cluster of three masters of the test's own: the suite passes through
// the Cluster client, whether given every node or one (recognised as a
// Cluster node).
func TestCluster(t *testing.T) {
	var addrs []string
	for range 3 {
		port := freePort(t)
		cmd := runRedis(t, port, "--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(freePort(t)), "--cluster-node-timeout", "2000")
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	create := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-replicas", "0", "--cluster-yes")...)...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		for i := 0; ; i++ {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if i == 200 {
				t.Fatalf("cluster node %s not ready: %s %v", a, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	for _, given := range [][]string{addrs, addrs[1:2]} {
		t.Run(fmt.Sprintf("%d addresses", len(given)), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) stores.OnlineStore {
				s, err := Open(context.Background(), Options{Addrs: given, Prefix: fmt.Sprintf("%s:%d:", t.Name(), time.Now().UnixNano())})
				if err != nil {
					t.Fatal(err)
				}
				if !s.cluster {
					t.Fatalf("Open(%v): not a Cluster client", given)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
	if _, err := Open(context.Background(), Options{Addrs: addrs, DB: 2}); err == nil || !strings.Contains(err.Error(), "only database 0") {
		t.Errorf("Cluster with DB 2: err = %v", err)
	}
}

// A server of the test's own that goes down and comes back: Get and Set
// fail with an error naming the server while it is down, and work again
// once it is back, on the same Store (go-redis redials; the script is
// reloaded).
func TestServerDownAndBack(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	server := runRedis(t, port)
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Kill()
		cmd.Wait()
	}
	start := func() *exec.Cmd { return runRedis(t, port) }
	defer func() { stop(server) }()

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s, err := Open(ctx, Options{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := storetest.Int64Keys(mem, 1)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"v"}, 1, func(int, int) float64 { return 1.5 })
	defer rec.Release()
	setGet := func() (string, error) {
		if err := s.Set(ctx, "C", keys, rec, []time.Time{t0}); err != nil {
			return "", err
		}
		v, err := s.Get(ctx, mem, "C", keys, rec.Schema())
		if err != nil {
			return "", err
		}
		defer v.Release()
		return v.Values.Column(0).String(), nil
	}
	if got, err := setGet(); err != nil || got != "[1.5]" {
		t.Fatalf("server up: %s, %v", got, err)
	}

	stop(server)
	if _, err := s.Get(ctx, mem, "C", keys, rec.Schema()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Get, server down: err = %v, want one naming %s", err, addr)
	}
	if err := s.Set(ctx, "C", keys, rec, []time.Time{t0}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Set, server down: err = %v, want one naming %s", err, addr)
	}

	server = start() // empty: no persistence, no scripts
	if got, err := setGet(); err != nil || got != "[1.5]" {
		t.Errorf("server back: %s, %v", got, err)
	}
}

// Get of K entities × F float features, every entity storing those F;
// beside it, the floor: a bare MGET of the same packed values, decoded
// into a []float64 (mgetFloats).
func BenchmarkGet(b *testing.B) {
	for _, shape := range []struct{ k, f int }{{1, 50}, {100, 50}, {10000, 50}, {1, 250}} {
		k := shape.k
		b.Run(fmt.Sprintf("%dx%d", k, shape.f), func(b *testing.B) {
			mem := memory.NewGoAllocator()
			s := open(b)
			names := make([]string, shape.f)
			for i := range names {
				names[i] = fmt.Sprintf("f%d", i)
			}
			ids := make([]int64, k)
			observed := make([]time.Time, k)
			for i := range ids {
				ids[i] = int64(i)
				observed[i] = t0
			}
			keys := storetest.Int64Keys(mem, ids...)
			defer keys.Release()
			rec := storetest.FloatRecord(mem, names, k, func(r, i int) float64 { return float64(r*shape.f + i) })
			defer rec.Release()
			if err := s.Set(context.Background(), "User", keys, rec, observed); err != nil {
				b.Fatal(err)
			}
			b.Run("store", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					v, err := s.Get(context.Background(), mem, "User", keys, rec.Schema())
					if err != nil {
						b.Fatal(err)
					}
					v.Release()
				}
			})
			b.Run("mget", func(b *testing.B) {
				rkeys := make([]string, k)
				for i := range rkeys {
					rkeys[i] = fmt.Sprintf("%sUser:i:%d", s.prefix, i)
				}
				defer reportCPU(b)()
				for b.Loop() {
					vals, err := s.client.MGet(context.Background(), rkeys...).Result()
					if err != nil {
						b.Fatal(err)
					}
					mgetFloats(b, vals, len(names))
				}
			})
		})
	}
}

// mgetFloats is the least work that reads the values of a bare MGET: every
// value's float64 (the last 8 bytes of a value encoded as
// stores.AppendUntypedValue does), in stored order, into one []float64; no
// slots, types or times.
func mgetFloats(b *testing.B, vals []any, perEntity int) []float64 {
	out := make([]float64, 0, len(vals)*perEntity)
	for _, v := range vals {
		blob, ok := v.(string)
		if !ok {
			b.Fatal("an entity is missing")
		}
		blob = blob[5:] // the layout byte and the directory's id
		for len(blob) > 0 {
			span := int(binary.BigEndian.Uint16([]byte(blob[10:12])))
			count := 0
			for _, c := range []byte(blob[12 : 12+(span+7)/8]) {
				count += bits.OnesCount8(c)
			}
			blob = blob[12+(span+7)/8:]
			for range count {
				n := int(blob[0])
				out = append(out, math.Float64frombits(binary.LittleEndian.Uint64([]byte(blob[1+n-8:1+n]))))
				blob = blob[1+n:]
			}
		}
	}
	if len(out) != len(vals)*perEntity {
		b.Fatalf("%d values, want %d", len(out), len(vals)*perEntity)
	}
	return out
}

// reportCPU adds the process's CPU time per operation (user and system,
// every goroutine: go-redis's reading, the GC) to a benchmark's figures:
// on a shared machine, wall times vary with the other load, CPU times much
// less. Call the function it returns after the loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestGetAuthAndDatabase: Get's own connections (mget.go) log in and select
// the database as go-redis's do: a value set in database 3 of a server
// with a password reads back there, and not from database 0.
func TestGetAuthAndDatabase(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	server := runRedis(t, port)
	defer func() {
		server.Process.Kill()
		server.Wait()
	}()
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: addr})
	if err := admin.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	if _, err := Open(ctx, Options{Addrs: []string{addr}, Password: "nope"}); err == nil {
		t.Error("Open with a wrong password: no error")
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	keys := storetest.Int64Keys(mem, 1, 2, 3)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"v"}, 3, func(r, _ int) float64 { return float64(r) + 0.5 })
	defer rec.Release()
	get := func(s *Store) string {
		t.Helper()
		v, err := s.Get(ctx, mem, "C", keys, rec.Schema())
		if err != nil {
			t.Fatal(err)
		}
		defer v.Release()
		return v.Values.Column(0).String()
	}
	db3, err := Open(ctx, Options{Addrs: []string{addr}, Password: "s3cret", DB: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	db0, err := Open(ctx, Options{Addrs: []string{addr}, Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer db0.Close()
	if err := db3.Set(ctx, "C", keys, rec, []time.Time{t0, t0, t0}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // on a fresh connection, then on pooled ones
		if got := get(db3); got != "[0.5 1.5 2.5]" {
			t.Errorf("database 3: %s", got)
		}
		if got := get(db0); got != "[(null) (null) (null)]" {
			t.Errorf("database 0: %s", got)
		}
	}
}

// TestClientLogsThroughSlog checks that go-redis's own lines (here: a pool
// that cannot dial) reach slog, in the server's format with the query's
// trace id, not the standard library's logger on stderr (seen by
// fletchload fault when Redis was killed: `redis: 2026/12/06 … pool.go:770:
// redis: connection pool: failed to dial after 5 attempts` among the
// structured lines).
func TestClientLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	defer slog.SetDefault(old)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	if _, err := Open(context.Background(), Options{Addrs: []string{addr}}); err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	var rec struct{ Level, Msg, Detail string }
	line, _, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatalf("no slog record of the failed dial: %v (%q)", err, buf.String())
	}
	if rec.Level != "WARN" || rec.Msg != "redis client" || !strings.Contains(rec.Detail, "failed to dial") || strings.HasPrefix(rec.Detail, "redis:") {
		t.Errorf("record %+v", rec)
	}
}

// Reach PINGs every address, and a closed port is its error.
func TestReach(t *testing.T) {
	addr := storetest.Server(t, "FLETCH_TEST_REDIS")
	ctx := context.Background()
	if err := Reach(ctx, Options{Addrs: []string{addr}}); err != nil {
		t.Errorf("Reach(%s): %v", addr, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if err := Reach(ctx, Options{Addrs: []string{addr, closed}}); err == nil || !strings.Contains(err.Error(), "redis store: cannot reach "+closed+": ") || strings.Contains(err.Error(), addr+":") {
		t.Errorf("Reach with %s closed: %v, want that address named alone", closed, err)
	}
}
