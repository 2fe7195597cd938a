package marketplace

import (
	"context"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/postgres"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// TestPostgresAnswersAsDuckDB copies the generated data into Postgres and
// runs every SQL resolver through both sources with the same requests: the
// same records must come back.
func TestPostgresAnswersAsDuckDB(t *testing.T) {
	ctx := context.Background()
	pg, err := postgres.Open(ctx, postgres.Options{DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	duck, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	if err := Generate(ctx, duck.DB(), Options{Seed: 5, Users: 300, Items: 150, Sellers: 20}); err != nil {
		t.Fatal(err)
	}
	if err := CopyToPostgres(ctx, duck.DB(), pg.Pool()); err != nil {
		t.Fatal(err)
	}
	for _, table := range Tables {
		var inDuck, inPG int64
		if err := duck.DB().QueryRow("SELECT count(*) FROM " + table).Scan(&inDuck); err != nil {
			t.Fatal(err)
		}
		if err := pg.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&inPG); err != nil {
			t.Fatal(err)
		}
		if inDuck != inPG || inDuck == 0 {
			t.Errorf("%s: %d rows in DuckDB, %d in Postgres", table, inDuck, inPG)
		}
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids := func(n int, extra ...string) []string {
		out := extra
		for i := 1; i <= n; i++ {
			out = append(out, strconv.Itoa(i))
		}
		return out
	}
	cases := []struct {
		file, key string
		keys      []string // strings, or integers for int keys
		intKeys   bool
	}{
		{"users.chalk.sql", "", nil, false},
		{"users.chalk.sql", "id", ids(40, "nope", "1"), false},
		{"sellers.chalk.sql", "id", ids(25), false},
		{"items.chalk.sql", "id", ids(160), false},
		{"items.chalk.sql", "seller_id", ids(5), false},
		{"reviews.chalk.sql", "", nil, false},
		{"reviews.chalk.sql", "id", ids(300, "0"), true},
		{"reviews.chalk.sql", "user_id", ids(50), false},
		{"item_prices.chalk.sql", "item_id", ids(12), false},
		{"item_prices.chalk.sql", "user_id", ids(30), false},
		{"item_prices.chalk.sql", "id", ids(500), true},
	}
	for _, c := range cases {
		t.Run(c.file+"/"+c.key, func(t *testing.T) {
			text, err := fs.ReadFile(Files, c.file)
			if err != nil {
				t.Fatal(err)
			}
			req := stores.FetchRequest{SQL: string(text), KeyColumn: c.key}
			if c.key != "" {
				req.Keys = keyArray(t, mem, c.keys, c.intKeys)
				defer req.Keys.Release()
			}
			want := fetchRows(t, duck, mem, req)
			got := fetchRows(t, pg, mem, req)
			if !slices.Equal(got, want) {
				t.Errorf("Postgres answers %d rows, DuckDB %d; first differences:\n%s", len(got), len(want), firstDiff(got, want))
			}
			if len(want) < 2 {
				t.Errorf("only %d rows: the case checks nothing", len(want))
			}
		})
	}
}

func keyArray(t *testing.T, mem memory.Allocator, keys []string, ints bool) arrow.Array {
	if !ints {
		return strKeys(mem, keys...)
	}
	n := make([]int64, len(keys))
	for i, k := range keys {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		n[i] = v
	}
	return intKeys(mem, n...)
}

// fetchRows runs req through src and renders the schema and the sorted rows.
func fetchRows(t *testing.T, src stores.Source, mem memory.Allocator, req stores.FetchRequest) []string {
	t.Helper()
	rec, err := src.Fetch(context.Background(), mem, req)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	rows := make([]string, rec.NumRows())
	for i := range rows {
		cells := make([]string, rec.NumCols())
		for j, col := range rec.Columns() {
			cells[j] = col.ValueStr(i)
		}
		rows[i] = strings.Join(cells, "|")
	}
	slices.Sort(rows)
	return append([]string{rec.Schema().String()}, rows...)
}

func firstDiff(got, want []string) string {
	var out []string
	for i := 0; i < max(len(got), len(want)) && len(out) < 6; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			out = append(out, "  postgres: "+g+"\n  duckdb:   "+w)
		}
	}
	return strings.Join(out, "\n")
}
