package dynamodb

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/storetest"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

var unsafeTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// openTest returns a store on a table of its own in FLETCH_TEST_DYNAMODB,
// deleted when the test ends.
func openTest(t testing.TB, optFns ...func(*dynamodb.Options)) *Store {
	endpoint := storetest.Server(t, "FLETCH_TEST_DYNAMODB")
	table := unsafeTableChars.ReplaceAllString(fmt.Sprintf("fletchtest_%s_%d", t.Name(), time.Now().UnixNano()), "_")
	s, err := open(context.Background(), Options{Table: table, Endpoint: endpoint, CreateTable: true}, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := s.client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Errorf("deleting %s: %v", table, err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.OnlineStore { return openTest(t) })
}

func featureNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	return names
}

// The item is the layout docs/STORES.md describes, read with a plain
// GetItem; a Set of more features than one UpdateItem carries keeps them
// all.
func TestLayout(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := openTest(t)
	keys := storetest.Int64Keys(mem, 42)
	defer keys.Release()
	names := featureNames(featuresPerUpdate*2 + 3)
	rec := storetest.FloatRecord(mem, names, 1, func(_, i int) float64 { return float64(i) })
	defer rec.Release()
	if err := s.Set(context.Background(), "User", keys, rec, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	out, err := s.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &s.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: "User#i:42"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) != len(names)+1 {
		t.Errorf("item has %d attributes, want the key and %d features", len(out.Item), len(names))
	}
	for _, n := range names {
		v, ok := out.Item[n].(*types.AttributeValueMemberB)
		if !ok {
			t.Errorf("attribute %s: %T, want binary", n, out.Item[n])
			continue
		}
		if at, err := stores.ObservedAt(v.Value); err != nil || !at.Equal(t0) {
			t.Errorf("attribute %s observed %v, %v; want %v", n, at, err, t0)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	endpoint := storetest.Server(t, "FLETCH_TEST_DYNAMODB")
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	// A table with another key.
	other := fmt.Sprintf("fletchtest_otherkey_%d", time.Now().UnixNano())
	s := openTest(t)
	if _, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &other,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	defer s.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &other})

	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Endpoint: endpoint}, "no table name"},
		{Options{Table: "fletchtest_absent", Endpoint: endpoint}, "table fletchtest_absent in us-east-1 at " + endpoint + " does not exist"},
		{Options{Table: other, Endpoint: endpoint}, `has the key (id); fletch's tables have one string partition key "fletch:key"`},
		{Options{Table: "t", Endpoint: dead}, "cannot reach table t in us-east-1 at " + dead},
	} {
		if _, err := Open(ctx, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v): err = %v, want %q", c.o, err, c.want)
		}
	}
}

// throttleGets makes the next n BatchGetItem answers return every key as
// unprocessed, as DynamoDB does when it throttles (the real server has
// answered; the middleware only drops what it returned).
func throttleGets(n *atomic.Int32) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("throttle", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if get, ok := out.Result.(*dynamodb.BatchGetItemOutput); ok && err == nil && n.Add(-1) >= 0 {
					get.Responses = nil
					get.UnprocessedKeys = in.Parameters.(*dynamodb.BatchGetItemInput).RequestItems
				}
				return out, md, err
			}), middleware.After)
		})
	}
}

func TestUnprocessedKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	var throttled atomic.Int32
	s := openTest(t, throttleGets(&throttled))
	s.backoff = time.Millisecond
	ids := make([]int64, 250) // three chunks
	observed := make([]time.Time, len(ids))
	for i := range ids {
		ids[i], observed[i] = int64(i), t0
	}
	keys := storetest.Int64Keys(mem, ids...)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"v"}, len(ids), func(r, _ int) float64 { return float64(r) })
	defer rec.Release()
	if err := s.Set(ctx, "C", keys, rec, observed); err != nil {
		t.Fatal(err)
	}

	// Throttled a few times: the retries get every key.
	throttled.Store(5)
	got, err := s.Get(ctx, mem, "C", keys, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if !array.RecordEqual(got.Values, rec) {
		t.Errorf("after retries: %v, want %v", got.Values, rec)
	}
	got.Release()

	// Throttled for good: a clear error, after unprocessedAttempts calls.
	throttled.Store(1 << 30)
	_, err = s.Get(ctx, mem, "C", keys, rec.Schema())
	want := fmt.Sprintf("keys still unprocessed after %d attempts (throttled", unprocessedAttempts)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), s.table) {
		t.Errorf("throttled for good: err = %v, want %q", err, want)
	}
}

// Writers of the same item at once: the newest value of each feature
// wins, whatever the order in which the conditional updates land.
func TestConcurrentWritersNewestWins(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := openTest(t)
	key := storetest.Int64Keys(mem, 1)
	defer key.Release()
	// Writer r stores a = r observed at t0+r and b = r observed at t0-r:
	// a's newest is the last writer's, b's the first's.
	const writers = 8
	done := make(chan error, writers)
	for r := range writers {
		go func() {
			a := storetest.FloatRecord(mem, []string{"a"}, 1, func(int, int) float64 { return float64(r) })
			defer a.Release()
			b := storetest.FloatRecord(mem, []string{"b"}, 1, func(int, int) float64 { return float64(r) })
			defer b.Release()
			err := s.Set(ctx, "C", key, a, []time.Time{t0.Add(time.Duration(r) * time.Second)})
			if err == nil {
				err = s.Set(ctx, "C", key, b, []time.Time{t0.Add(-time.Duration(r) * time.Second)})
			}
			done <- err
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := storetest.FloatRecord(mem, []string{"a", "b"}, 1, func(_, i int) float64 { return float64((writers - 1) * (1 - i)) })
	defer want.Release()
	got, err := s.Get(ctx, mem, "C", key, want.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !array.RecordEqual(got.Values, want) {
		t.Errorf("got %v, want %v", got.Values, want)
	}
}

// Get of K entities × 50 float features from DynamoDB Local (an
// emulator: its figures are not DynamoDB's), and a Set of 100 × 50.
func BenchmarkGet(b *testing.B) {
	names := featureNames(50)
	for _, k := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("%dx50", k), func(b *testing.B) {
			mem := memory.NewGoAllocator()
			s := openTest(b)
			keys, rec := benchData(mem, names, k)
			defer keys.Release()
			defer rec.Release()
			if err := s.Set(context.Background(), "User", keys, rec, observedAll(k)); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				v, err := s.Get(context.Background(), mem, "User", keys, rec.Schema())
				if err != nil {
					b.Fatal(err)
				}
				v.Release()
			}
		})
	}
}

// Set of 100 × 50 (conditional UpdateItems) beside what BatchWriteItem
// would cost for the same items (four parallel requests of 25 PutItems,
// which replace whole items unconditionally: the store cannot use them).
func BenchmarkSet(b *testing.B) {
	mem := memory.NewGoAllocator()
	s := openTest(b)
	names := featureNames(50)
	keys, rec := benchData(mem, names, 100)
	defer keys.Release()
	defer rec.Release()
	at := t0
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			at = at.Add(time.Second)
			obs := observedAll(100)
			for i := range obs {
				obs[i] = at
			}
			if err := s.Set(context.Background(), "User", keys, rec, obs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batchwrite", func(b *testing.B) {
		puts := make([]types.WriteRequest, keys.Len())
		for r := range puts {
			item := map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: fmt.Sprintf("Other#i:%d", r)}}
			for c, n := range names {
				enc, err := stores.AppendValue(nil, rec.Column(c), r, t0)
				if err != nil {
					b.Fatal(err)
				}
				item[n] = &types.AttributeValueMemberB{Value: enc}
			}
			puts[r] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
		}
		for b.Loop() {
			err := inParallel(context.Background(), len(puts), 25, func(ctx context.Context, lo, hi int) error {
				out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: puts[lo:hi]}})
				if err == nil && len(out.UnprocessedItems) > 0 {
					err = fmt.Errorf("%d unprocessed", len(out.UnprocessedItems[s.table]))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchData(mem memory.Allocator, names []string, k int) (arrow.Array, arrow.RecordBatch) {
	ids := make([]int64, k)
	for i := range ids {
		ids[i] = int64(i)
	}
	return storetest.Int64Keys(mem, ids...), storetest.FloatRecord(mem, names, k, func(r, i int) float64 { return float64(r*50 + i) })
}

func observedAll(k int) []time.Time {
	obs := make([]time.Time, k)
	for i := range obs {
		obs[i] = t0
	}
	return obs
}
