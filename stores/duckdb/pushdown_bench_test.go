//go:build duckdb_arrow

package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/stores"
)

// BenchmarkKeyPushdown compares the two ways of restricting a resolver's
// query to a request's keys: the keys bound as one LIST parameter (what
// Fetch does), and the keys registered as an Arrow view and semi-joined
// (rejected: see withListKeys). Figures are in docs/CONFIG.md.
func BenchmarkKeyPushdown(b *testing.B) {
	src, err := Open("")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.DB().Exec(`CREATE TABLE events AS
		SELECT i % 50000 AS user_id, i AS id, i * 0.5 AS value FROM range(1000000) t(i)`); err != nil {
		b.Fatal(err)
	}
	const query = "SELECT user_id, id, value FROM events"
	mem := memory.NewGoAllocator()
	for _, n := range []int{1, 100, 10000} {
		kb := array.NewInt64Builder(mem)
		for i := range n {
			kb.Append(int64(i * 5))
		}
		keys := kb.NewArray()
		kb.Release()
		req := stores.FetchRequest{SQL: query, KeyColumn: "user_id", Keys: keys}
		b.Run(fmt.Sprintf("list-param/keys=%d", n), func(b *testing.B) {
			for b.Loop() {
				rec, err := src.Fetch(context.Background(), mem, req)
				if err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
		})
		b.Run(fmt.Sprintf("arrow-view/keys=%d", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				rec, err := fetchViaView(src, mem, req, "_bench_keys_"+strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
		})
		keys.Release()
	}
}

func fetchViaView(src *Source, mem memory.Allocator, req stores.FetchRequest, view string) (arrow.RecordBatch, error) {
	ctx := context.Background()
	conn, err := src.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var rec arrow.RecordBatch
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: req.Keys.DataType(), Nullable: true}}, nil)
		keys := array.NewRecordBatch(schema, []arrow.Array{req.Keys}, int64(req.Keys.Len()))
		defer keys.Release()
		reader, err := array.NewRecordReader(schema, []arrow.RecordBatch{keys})
		if err != nil {
			return err
		}
		defer reader.Release()
		release, err := a.RegisterView(reader, view)
		if err != nil {
			return err
		}
		defer release()
		defer dc.(driver.ExecerContext).ExecContext(ctx, "DROP VIEW "+view, nil)
		rr, err := a.QueryContext(ctx, restrictToKeys(req, "SELECT k FROM "+view))
		if err != nil {
			return err
		}
		defer rr.Release()
		rec, err = readAll(mem, rr, nil)
		return err
	})
	return rec, err
}
