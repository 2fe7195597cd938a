package postgres

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// The values of every type the source reads, nulls and edges included.
// Each column is checked against what Postgres prints for it (`c::text`),
// element by element for arrays.
const typesTable = `
CREATE TABLE v (
	r int PRIMARY KEY,
	i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
	n numeric, n0 numeric(20,0), n2 numeric(10,2),
	s text, vc varchar(10), c char(5), b bool,
	ts timestamp, tz timestamptz, d date,
	j json, jb jsonb,
	ai int4[], ai8 int8[], af float8[], an numeric[], atx text[], ab bool[], atz timestamptz[], ad date[], aj jsonb[]);
INSERT INTO v VALUES
(1, 42, 123456, 9007199254740993, 1.1, 0.1,
	12345.6789, 42, 3.14,
	'héllo ☃', 'abc', 'ab', true,
	'2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+05:30', '2024-02-29',
	'{"a": [1, 2],  "z": "x"}', '{"b": null, "a": 1}',
	'{1,NULL,3}', '{-9223372036854775808,9223372036854775807}', '{1.5,NULL,-0.25}', '{1.25,NULL,-3,0.000001}', '{"a b",NULL,"",c,"{x}"}', '{t,f,NULL}',
	'{"2024-01-01 00:00:00+00",NULL,"1999-12-31 23:59:59.5+00"}', '{2024-01-01,NULL,1969-07-20}', ARRAY['{"k": [true]}'::jsonb, NULL]),
(2, -32768, -2147483648, -9223372036854775808, '-Infinity', 'NaN',
	'NaN', -999999999999999999, -0.01,
	'', '', ' ', false,
	'1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '1900-03-01',
	'null', '[]',
	'{}', '{}', '{NULL}', '{}', '{""}', '{}', '{}', '{}', '{}'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308,
	'0.0001234', 9223372036854775807, 99999999.99,
	'line
break', 'tab	x', 'abcde', true,
	'0001-01-01 00:00:00', '2262-04-11 23:47:16.854775+00', '9999-12-31',
	'"just a string"', '{"nested": {"deep": [1.5, "x"]}}',
	'{0}', '{0}', '{Infinity,-Infinity,NaN}', '{NaN}', '{NULL,NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}'),
(5, 0, 0, 0, -0.0, 5e-324,
	'123456789012345678901234567890.5', 0, 0,
	'x', 'y', 'z', false,
	'2000-01-01 00:00:00', '2000-01-01 00:00:00+00', '2000-01-01',
	'{}', '{}',
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(6, 1, 1, 1, 1, 1, 'Infinity', 1, 1, 'x', 'y', 'z', true,
	'2024-06-01 00:00:00', '2024-06-01 00:00:00+00', '2024-06-01', '1', '1',
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(7, 1, 1, 1, 1, 1, '-Infinity', 1, 1, 'x', 'y', 'z', true,
	'2024-06-01 00:00:00', '2024-06-01 00:00:00+00', '2024-06-01', '1', '1',
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`

func TestTypesAgainstPostgresText(t *testing.T) {
	dsn := pgtest.DSN(t)
	src := openTest(t, Options{DSN: dsn}, typesTable)
	ctx := context.Background()
	ref, err := pgx.Connect(ctx, pgtest.WithParam(dsn, "timezone", "UTC"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close(ctx)

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, err := src.Fetch(ctx, mem, stores.FetchRequest{SQL: "SELECT * FROM v ORDER BY r"})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()

	wantTypes := map[string]arrow.DataType{
		"i2": arrow.PrimitiveTypes.Int64, "i4": arrow.PrimitiveTypes.Int64, "i8": arrow.PrimitiveTypes.Int64,
		"f4": arrow.PrimitiveTypes.Float64, "f8": arrow.PrimitiveTypes.Float64,
		"n": arrow.PrimitiveTypes.Float64, "n0": arrow.PrimitiveTypes.Int64, "n2": arrow.PrimitiveTypes.Float64,
		"s": arrow.BinaryTypes.String, "vc": arrow.BinaryTypes.String, "c": arrow.BinaryTypes.String,
		"b": arrow.FixedWidthTypes.Boolean, "ts": features.TimestampType, "tz": features.TimestampType,
		"d": arrow.FixedWidthTypes.Date32, "j": arrow.BinaryTypes.String, "jb": arrow.BinaryTypes.String,
		"ai": arrow.ListOf(arrow.PrimitiveTypes.Int64), "ai8": arrow.ListOf(arrow.PrimitiveTypes.Int64),
		"af": arrow.ListOf(arrow.PrimitiveTypes.Float64), "an": arrow.ListOf(arrow.PrimitiveTypes.Float64),
		"atx": arrow.ListOf(arrow.BinaryTypes.String), "ab": arrow.ListOf(arrow.FixedWidthTypes.Boolean),
		"atz": arrow.ListOf(features.TimestampType), "ad": arrow.ListOf(arrow.FixedWidthTypes.Date32),
		"aj": arrow.ListOf(arrow.BinaryTypes.String),
	}
	for i, f := range rec.Schema().Fields() {
		if f.Name == "r" {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			if want := wantTypes[f.Name]; !arrow.TypeEqual(f.Type, want) {
				t.Fatalf("type %s, want %s", f.Type, want)
			}
			checkColumn(t, ref, "v", f.Name, rec.Column(i))
		})
	}
}

// checkColumn compares column col of table (ordered by r) with what
// Postgres prints for it.
func checkColumn(t *testing.T, ref *pgx.Conn, table, col string, arr arrow.Array) {
	t.Helper()
	ctx := context.Background()
	id := pgx.Identifier{col}.Sanitize()
	var pgType string
	if err := ref.QueryRow(ctx, "SELECT pg_typeof("+id+")::text FROM "+table+" LIMIT 1").Scan(&pgType); err != nil {
		t.Fatal(err)
	}
	list, isList := arr.(*array.List)
	if !isList {
		texts := queryTexts(t, ref, "SELECT "+id+"::text FROM "+table+" ORDER BY r")
		if len(texts) != arr.Len() {
			t.Fatalf("%d rows, Postgres has %d", arr.Len(), len(texts))
		}
		for i, want := range texts {
			if got, ok := sameValue(arr, i, pgType, want); !ok {
				t.Errorf("row %d: got %s, Postgres prints %s", i, got, show(want))
			}
		}
		return
	}
	elemType := strings.TrimSuffix(pgType, "[]")
	var rows []int
	var cards []*int
	r, err := ref.Query(ctx, "SELECT r, cardinality("+id+") FROM "+table+" ORDER BY r")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var row int
		var card *int
		if err := r.Scan(&row, &card); err != nil {
			t.Fatal(err)
		}
		rows, cards = append(rows, row), append(cards, card)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	for i, row := range rows {
		if (cards[i] == nil) != list.IsNull(i) {
			t.Errorf("row %d: null %v, Postgres says null %v", i, list.IsNull(i), cards[i] == nil)
			continue
		}
		if cards[i] == nil {
			continue
		}
		start, end := list.ValueOffsets(i)
		texts := queryTexts(t, ref, "SELECT e::text FROM "+table+", unnest("+id+") WITH ORDINALITY AS u(e, o) WHERE r = "+strconv.Itoa(row)+" ORDER BY o")
		if int(end-start) != len(texts) {
			t.Errorf("row %d: %d elements, Postgres has %d", i, end-start, len(texts))
			continue
		}
		for k, want := range texts {
			if got, ok := sameValue(list.ListValues(), int(start)+k, elemType, want); !ok {
				t.Errorf("row %d element %d: got %s, Postgres prints %s", i, k, got, show(want))
			}
		}
	}
}

func queryTexts(t *testing.T, ref *pgx.Conn, query string) []*string {
	t.Helper()
	rows, err := ref.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// sameValue reports whether cell i of arr is the value Postgres prints as
// want (nil: NULL), given the Postgres type of the column; got shows the
// cell.
func sameValue(arr arrow.Array, i int, pgType string, want *string) (string, bool) {
	if arr.IsNull(i) || want == nil {
		return "NULL", arr.IsNull(i) && want == nil
	}
	switch a := arr.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), strconv.FormatInt(a.Value(i), 10) == *want
	case *array.Float64:
		bits := 64
		if pgType == "real" {
			bits = 32
		}
		w, err := strconv.ParseFloat(*want, bits)
		got := a.Value(i)
		if err != nil {
			return strconv.FormatFloat(got, 'g', -1, 64), false
		}
		return strconv.FormatFloat(got, 'g', -1, 64), got == w || math.IsNaN(got) && math.IsNaN(w)
	case *array.String:
		return strconv.Quote(a.Value(i)), a.Value(i) == *want
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i)), strconv.FormatBool(a.Value(i)) == *want
	case *array.Timestamp:
		layout := "2006-01-02 15:04:05.999999-07"
		if pgType == "timestamp without time zone" {
			layout = "2006-01-02 15:04:05.999999"
		}
		got := time.UnixMicro(int64(a.Value(i))).UTC().Format(layout)
		return got, got == *want
	case *array.Date32:
		got := a.Value(i).ToTime().Format("2006-01-02")
		return got, got == *want
	}
	return "a " + arr.DataType().String(), false
}
