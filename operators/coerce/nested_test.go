package coerce

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func fromJSON(t *testing.T, mem memory.Allocator, dt arrow.DataType, text string) arrow.Array {
	t.Helper()
	arr, _, err := array.FromJSON(mem, dt, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return arr
}

// sliced releases arr and returns its rows [from, to).
func sliced(arr arrow.Array, from, to int64) arrow.Array {
	defer arr.Release()
	return array.NewSlice(arr, from, to)
}

// view builds a list view of child with the given offsets and sizes; a
// negative size marks a null row (given a junk offset and size).
func view(mem memory.Allocator, dt arrow.DataType, child arrow.Array, offsets, sizes []int32) arrow.Array {
	defer child.Release()
	valid := make([]bool, len(sizes))
	nulls := 0
	for i, s := range sizes {
		valid[i] = s >= 0
		if s < 0 {
			offsets[i], sizes[i] = 1000, 7
			nulls++
		}
	}
	var bufs []*memory.Buffer
	if dt.ID() == arrow.LIST_VIEW {
		bufs = []*memory.Buffer{memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(sizes))}
	} else {
		o, s := make([]int64, len(offsets)), make([]int64, len(sizes))
		for i := range offsets {
			o[i], s[i] = int64(offsets[i]), int64(sizes[i])
		}
		bufs = []*memory.Buffer{memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(o)), memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(s))}
	}
	bitmap := make([]byte, (len(valid)+7)/8)
	for i, v := range valid {
		if v {
			bitmap[i/8] |= 1 << (i % 8)
		}
	}
	data := array.NewData(dt, len(sizes), append([]*memory.Buffer{memory.NewBufferBytes(bitmap)}, bufs...), []arrow.ArrayData{child.Data()}, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

func TestLists(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ints := arrow.ListOf(i64)
	n := func(vs ...int64) []any {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = v
		}
		return out
	}
	for _, c := range []struct {
		name string
		in   arrow.Array
		to   arrow.DataType
		want []any
	}{
		{"list", fromJSON(t, mem, arrow.ListOf(arrow.PrimitiveTypes.Int32), `[[1,2],null,[],[3,null]]`), ints,
			[]any{n(1, 2), nil, []any{}, []any{int64(3), nil}}},
		{"sliced list", sliced(fromJSON(t, mem, arrow.ListOf(arrow.PrimitiveTypes.Int32), `[[9],[1,2],null,[3],[8]]`), 1, 4), ints,
			[]any{n(1, 2), nil, n(3)}},
		{"list of names", fromJSON(t, mem, arrow.ListOfField(arrow.Field{Name: "element", Type: i64, Nullable: true}), `[[1],[2,3]]`), ints,
			[]any{n(1), n(2, 3)}},
		{"large list of strings", sliced(fromJSON(t, mem, arrow.LargeListOf(str), `[["0"],[" 1","-2"],null,["3"]]`), 1, 4), ints,
			[]any{n(1, -2), nil, n(3)}},
		{"fixed size list", sliced(fromJSON(t, mem, arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Uint16), `[[0,0],[1,2],null,[65535,4]]`), 1, 4), arrow.ListOf(str),
			[]any{[]any{"1", "2"}, nil, []any{"65535", "4"}}},
		{"list view out of order", view(mem, arrow.ListViewOf(arrow.PrimitiveTypes.Int32), fromJSON(t, mem, arrow.PrimitiveTypes.Int32, `[10,20,30,40]`),
			[]int32{2, 0, 0, 1, 0}, []int32{2, 2, -1, 3, 0}), ints,
			[]any{n(30, 40), n(10, 20), nil, n(20, 30, 40), []any{}}},
		{"sliced large list view", sliced(view(mem, arrow.LargeListViewOf(str), fromJSON(t, mem, str, `["1","2","3"]`),
			[]int32{0, 1, 0, 2}, []int32{1, 2, -1, 1}), 1, 4), ints,
			[]any{n(2, 3), nil, n(3)}},
		{"list view end to end", view(mem, arrow.ListViewOf(i64), fromJSON(t, mem, i64, `[1,2,3]`),
			[]int32{0, 1, 0}, []int32{1, 2, -1}), arrow.ListOf(f64),
			[]any{[]any{1.0}, []any{2.0, 3.0}, nil}},
		{"list of lists", fromJSON(t, mem, arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int8)), `[[[1],[2,3]],null,[null,[]]]`), arrow.ListOf(ints),
			[]any{[]any{n(1), n(2, 3)}, nil, []any{nil, []any{}}}},
		{"list of nulls", fromJSON(t, mem, arrow.ListOf(arrow.Null), `[[null],[]]`), ints,
			[]any{[]any{nil}, []any{}}},
		{"list of timestamps", fromJSON(t, mem, arrow.ListOf(ts(arrow.Nanosecond, "")), `[[-1001, 2000],null]`), arrow.ListOf(tsUS),
			[]any{n(-2, 2), nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			check(t, mem, c.in, c.to, c.want)
		})
	}
	// A null row's elements are never read, so they cannot fail.
	child := fromJSON(t, mem, str, `["1","x","3"]`)
	hidden := array.NewData(arrow.ListOf(str), 3, []*memory.Buffer{
		memory.NewBufferBytes([]byte{0b101}),
		memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{0, 1, 2, 3})),
	}, []arrow.ArrayData{child.Data()}, 1, 0)
	child.Release()
	check(t, mem, array.MakeFromData(hidden), ints, []any{[]any{int64(1)}, nil, []any{int64(3)}})
	hidden.Release()

	in := sliced(fromJSON(t, mem, arrow.ListOf(str), `[["x"],["1"],["2","two"]]`), 1, 3)
	checkErr(t, mem, in, ints, `row 1: element 1: "two"`)
	checkErr(t, mem, fromJSON(t, mem, arrow.ListOf(arrow.PrimitiveTypes.Uint64), `[[1],[18446744073709551615]]`), ints, "list elements", "18446744073709551615")
	nested := fromJSON(t, mem, arrow.ListOf(arrow.ListOf(str)), `[[["1"]],null,[[],["2","x"]]]`)
	checkErr(t, mem, nested, arrow.ListOf(ints), `row 2: element 1: element 1: "x"`)
}

func TestNulls(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, to := range []arrow.DataType{i64, f64, boolT, str, arrow.BinaryTypes.Binary, tsUS, ts(arrow.Second, ""), date, arrow.ListOf(str)} {
		check(t, mem, array.MakeArrayOfNull(mem, arrow.Null, 3), to, []any{nil, nil, nil})
	}
	checkErr(t, mem, array.MakeArrayOfNull(mem, arrow.Null, 3), arrow.PrimitiveTypes.Int32, "no conversion")
}
