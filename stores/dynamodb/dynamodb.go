// Package dynamodb is the DynamoDB online store: one item per (class,
// entity) with one binary attribute per cached feature, read with
// BatchGetItem in parallel chunks of 100 (projecting the asked features) and
// written with one conditional UpdateItem per entity, so that a stored value
// observed later is never replaced and a write of some features keeps the
// others. docs/STORES.md has the layout and why writes are not BatchWriteItem.
//
// It knows nothing of feature classes beyond their names, nor of
// staleness: the planner decides what is fresh enough.
package dynamodb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/fletch-engine/fletch/stores"
)

// Options configures the table and how to reach it.
type Options struct {
	Table  string
	Region string // default: the AWS environment's; us-east-1 with an Endpoint
	// Endpoint overrides AWS's, e.g. http://127.0.0.1:58000 for DynamoDB
	// Local; with it, static credentials are used unless AWS_ACCESS_KEY_ID
	// is set.
	Endpoint string
	// CreateTable creates the table (on-demand billing) when it does not
	// exist.
	CreateTable bool
}

// KeyAttribute is the table's partition key: "<class>#<entity key>", the
// entity key as stores.EntityKey writes it ("User#i:50"). No feature can
// be named so (a feature name is a Python identifier).
const KeyAttribute = "fletch:key"

const (
	keysPerGet = 100 // BatchGetItem's limit
	// featuresPerUpdate keeps an UpdateItem's condition, about 50 bytes a
	// feature, under DynamoDB's 4 KB limit for one expression.
	featuresPerUpdate = 64
	// parallel bounds the requests in flight for one Get or Set.
	parallel = 16
	// unprocessedAttempts bounds the BatchGetItem calls for one chunk whose
	// keys keep coming back unprocessed (throttling), and the UpdateItem
	// rounds for one entity that concurrent writers keep racing.
	unprocessedAttempts = 8
)

// Store is a stores.OnlineStore over one DynamoDB table. It is safe for
// concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	where  string // the table and endpoint, for error messages
	// backoff is the first wait before retrying unprocessed keys; it
	// doubles at each attempt, with jitter.
	backoff time.Duration
}

var _ stores.OnlineStore = (*Store)(nil)

// Open connects to the table, creating it when o.CreateTable says so.
func Open(ctx context.Context, o Options) (*Store, error) {
	return open(ctx, o)
}

// open is Open with extra client options (the tests inject faults).
func open(ctx context.Context, o Options, optFns ...func(*dynamodb.Options)) (*Store, error) {
	if o.Table == "" {
		return nil, errors.New("dynamodb store: no table name")
	}
	loads := []func(*config.LoadOptions) error{
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = parallel
		})),
	}
	if o.Region != "" {
		loads = append(loads, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		if o.Region == "" {
			loads = append(loads, config.WithRegion("us-east-1"))
		}
		if _, set := os.LookupEnv("AWS_ACCESS_KEY_ID"); !set {
			loads = append(loads, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("fletch", "fletch", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb store: AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("dynamodb store: table %s: no region (set region, or AWS_REGION)", o.Table)
	}
	s := &Store{table: o.Table, backoff: 25 * time.Millisecond}
	s.where = fmt.Sprintf("table %s in %s", o.Table, cfg.Region)
	if o.Endpoint != "" {
		s.where += " at " + o.Endpoint
	}
	s.client = dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(d *dynamodb.Options) {
		if o.Endpoint != "" {
			d.BaseEndpoint = aws.String(o.Endpoint)
		}
	}}, optFns...)...)
	if err := s.checkTable(ctx, o.CreateTable); err != nil {
		return nil, err
	}
	return s, nil
}

// NoTableError is Open's error for a table that does not exist, when it
// is not to be created.
type NoTableError struct{ where string }

func (e *NoTableError) Error() string {
	return fmt.Sprintf("dynamodb store: %s does not exist (create it with the string partition key %q, or set create_table)", e.where, KeyAttribute)
}

func (s *Store) checkTable(ctx context.Context, create bool) error {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing) && create:
		_, err = s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &s.table,
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(KeyAttribute), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(KeyAttribute), KeyType: types.KeyTypeHash}},
		})
		var inUse *types.ResourceInUseException // created meanwhile by another process
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("dynamodb store: creating %s: %w", s.where, err)
		}
		out, err = dynamodb.NewTableExistsWaiter(s.client).WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("dynamodb store: waiting for %s to be active: %w", s.where, err)
		}
	case errors.As(err, &missing):
		return &NoTableError{where: s.where}
	case err != nil:
		return fmt.Errorf("dynamodb store: cannot reach %s: %w", s.where, err)
	}
	ks := out.Table.KeySchema
	if len(ks) != 1 || aws.ToString(ks[0].AttributeName) != KeyAttribute {
		names := make([]string, len(ks))
		for i, k := range ks {
			names[i] = aws.ToString(k.AttributeName)
		}
		return fmt.Errorf("dynamodb store: %s has the key (%s); fletch's tables have one string partition key %q", s.where, strings.Join(names, ", "), KeyAttribute)
	}
	return nil
}

// Close releases nothing: the client holds only idle HTTP connections.
func (s *Store) Close() error { return nil }

// Ping checks that the table answers (stores.Pinger).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	if err != nil {
		return fmt.Errorf("dynamodb store: cannot reach %s: %w", s.where, err)
	}
	return nil
}

// itemKeys returns the partition key of each entity key; "" for a null one.
func itemKeys(class string, keys arrow.Array) ([]string, error) {
	out := make([]string, keys.Len())
	for i := range out {
		key, ok, err := stores.EntityKey(keys, i)
		if err != nil {
			return nil, fmt.Errorf("dynamodb store: %w", err)
		}
		if ok {
			out[i] = class + "#" + key
		}
	}
	return out, nil
}

// Get reads the distinct keys in chunks of 100, the chunks in parallel,
// each projected to the asked features.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pks, err := itemKeys(class, keys)
	if err != nil {
		return nil, err
	}
	// BatchGetItem refuses a key twice in one request.
	index := make(map[string]int, len(pks))
	var distinct []string
	for _, pk := range pks {
		if _, seen := index[pk]; !seen && pk != "" {
			index[pk] = len(distinct)
			distinct = append(distinct, pk)
		}
	}
	names := map[string]string{"#k": KeyAttribute}
	proj := []string{"#k"}
	for i, f := range want.Fields() {
		n := "#f" + strconv.Itoa(i)
		names[n] = f.Name
		proj = append(proj, n)
	}
	projection := strings.Join(proj, ", ")
	items := make([]map[string]types.AttributeValue, len(distinct))
	err = inParallel(ctx, len(distinct), keysPerGet, func(ctx context.Context, lo, hi int) error {
		req := make([]map[string]types.AttributeValue, 0, hi-lo)
		for _, pk := range distinct[lo:hi] {
			req = append(req, map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: pk}})
		}
		return s.batchGet(ctx, req, names, projection, func(item map[string]types.AttributeValue) {
			if k, ok := item[KeyAttribute].(*types.AttributeValueMemberS); ok {
				if i, ok := index[k.Value]; ok {
					items[i] = item // chunks own disjoint slots
				}
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dynamodb store: get %s (%d keys) from %s: %w", class, len(distinct), s.where, err)
	}

	vb, err := stores.NewValuesBuilder(mem, want, len(pks))
	if err != nil {
		return nil, fmt.Errorf("dynamodb store: %w", err)
	}
	defer vb.Release()
	fields := want.Fields()
	for r, pk := range pks {
		if pk == "" {
			continue
		}
		item := items[index[pk]]
		for i, f := range fields {
			if b, ok := item[f.Name].(*types.AttributeValueMemberB); ok {
				if err := vb.PutValue(r, i, b.Value); err != nil {
					return nil, fmt.Errorf("dynamodb store: %s %s: %w", s.where, pk, err)
				}
			}
		}
	}
	return vb.Finish(), nil
}

// batchGet calls each for every item of keys found, retrying the keys
// DynamoDB leaves unprocessed (throttling, or a response over 16 MB).
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, names map[string]string, projection string, each func(map[string]types.AttributeValue)) error {
	for attempt := 0; ; attempt++ {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: {
				Keys:                     keys,
				ProjectionExpression:     &projection,
				ExpressionAttributeNames: names,
			}},
		})
		if err != nil {
			return err
		}
		for _, item := range out.Responses[s.table] {
			each(item)
		}
		keys = out.UnprocessedKeys[s.table].Keys
		if len(keys) == 0 {
			return nil
		}
		if attempt+1 == unprocessedAttempts {
			return fmt.Errorf("%d keys still unprocessed after %d attempts (throttled: raise the table's read capacity)", len(keys), unprocessedAttempts)
		}
		if err := s.wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// wait sleeps before retry attempt+1: exponential backoff with full jitter.
func (s *Store) wait(ctx context.Context, attempt int) error {
	d := s.backoff << attempt
	d = d/2 + rand.N(d/2+1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// inParallel calls f on [lo, hi) chunks of size of n items, at most
// `parallel` at a time; the first error cancels the others.
func inParallel(ctx context.Context, n, size int, f func(ctx context.Context, lo, hi int) error) error {
	if n <= size { // the common case: no goroutine
		if n == 0 {
			return nil
		}
		return f(ctx, 0, n)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for lo := 0; lo < n; lo += size {
		g.Go(func() error { return f(ctx, lo, min(lo+size, n)) })
	}
	return g.Wait()
}

// Set writes each entity with a conditional UpdateItem (in parallel): it
// sets every given feature whose stored value is missing or observed no
// later, atomically per item.
func (s *Store) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(keys.Len()) != values.NumRows() || len(observed) != keys.Len() {
		return fmt.Errorf("dynamodb store: %d keys, %d rows of values and %d observation times; want as many of each", keys.Len(), values.NumRows(), len(observed))
	}
	pks, err := itemKeys(class, keys)
	if err != nil {
		return err
	}
	type write struct {
		pk    string
		encs  [][]byte
		upper []byte // AppendObserved(observed + 1µs): stored values below it are replaced
	}
	writes := make([]write, 0, len(pks))
	for r, pk := range pks {
		if pk == "" {
			continue
		}
		w := write{pk: pk, encs: make([][]byte, values.NumCols()), upper: stores.AppendObserved(nil, observed[r].Add(time.Microsecond))}
		for c, col := range values.Columns() {
			if w.encs[c], err = stores.AppendValue(nil, col, r, observed[r]); err != nil {
				return fmt.Errorf("dynamodb store: feature %s: %w", values.ColumnName(c), err)
			}
		}
		writes = append(writes, w)
	}
	names := make([]string, values.NumCols())
	for c := range names {
		names[c] = values.ColumnName(c)
	}
	err = inParallel(ctx, len(writes), 1, func(ctx context.Context, lo, _ int) error {
		w := writes[lo]
		return s.update(ctx, w.pk, names, w.encs, w.upper)
	})
	if err != nil {
		return fmt.Errorf("dynamodb store: set %s (%d keys) in %s: %w", class, len(writes), s.where, err)
	}
	return nil
}

// update writes one item's features, featuresPerUpdate per UpdateItem.
// Where the condition fails (a feature stored later), it retries the
// features that are still older, read from the failed condition's answer.
func (s *Store) update(ctx context.Context, pk string, names []string, encs [][]byte, upper []byte) error {
	pending := make([]int, len(names))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == unprocessedAttempts {
			return fmt.Errorf("%s: concurrent writers kept racing for %d attempts", pk, unprocessedAttempts)
		}
		var retry []int
		for lo := 0; lo < len(pending); lo += featuresPerUpdate {
			group := pending[lo:min(lo+featuresPerUpdate, len(pending))]
			in := &dynamodb.UpdateItemInput{
				TableName:                           &s.table,
				Key:                                 map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: pk}},
				ExpressionAttributeNames:            make(map[string]string, len(group)),
				ExpressionAttributeValues:           make(map[string]types.AttributeValue, 2*len(group)),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}
			var set, cond strings.Builder
			for j, f := range group {
				n, v, u := "#a"+strconv.Itoa(j), ":v"+strconv.Itoa(j), ":u"+strconv.Itoa(j)
				in.ExpressionAttributeNames[n] = names[f]
				in.ExpressionAttributeValues[v] = &types.AttributeValueMemberB{Value: encs[f]}
				in.ExpressionAttributeValues[u] = &types.AttributeValueMemberB{Value: upper}
				if j > 0 {
					set.WriteString(", ")
					cond.WriteString(" AND ")
				}
				fmt.Fprintf(&set, "%s = %s", n, v)
				fmt.Fprintf(&cond, "(attribute_not_exists(%s) OR %s < %s)", n, n, u)
			}
			in.UpdateExpression = aws.String("SET " + set.String())
			in.ConditionExpression = aws.String(cond.String())
			_, err := s.client.UpdateItem(ctx, in)
			var failed *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &failed):
				for _, f := range group {
					old, ok := failed.Item[names[f]].(*types.AttributeValueMemberB)
					if !ok || bytes.Compare(old.Value, upper) < 0 {
						retry = append(retry, f)
					}
				}
			case err != nil:
				return err
			}
		}
		pending = retry
	}
	return nil
}
