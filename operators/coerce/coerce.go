package coerce

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Array returns arr as type to: arr itself, retained, when it already is
// of that type, else a new array allocated from mem. Nulls stay nulls. The
// caller releases the result. Errors name the row (counted from the start
// of arr, slice offsets excluded) and the value that does not convert.
func Array(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	out, err := convert(mem, arr, to)
	if err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", arr.DataType(), to, err)
	}
	return out, nil
}

// Convertible reports whether Array converts arrays of type from to type
// to (given values that fit: a string that reads as the target, an
// integer in range).
func Convertible(from, to arrow.DataType) bool {
	return arrow.TypeEqual(from, to) || find(from, to) != nil
}

// Canonical is the fletch type of a column a source answers as dt, and
// whether there is one: every integer is int64, every float float64,
// DECIMAL(p, 0) int64 (how DuckDB answers HUGEINT, the type of sum() over
// integers), other decimals float64, every string kind string, every
// timestamp timestamp[us, UTC], every date date32, a dictionary its value's
// type, a list of any kind a list of its element's fletch type.
// Convertible(dt, t) holds for the t it returns.
func Canonical(dt arrow.DataType) (arrow.DataType, bool) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return arrow.PrimitiveTypes.Int64, true
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return arrow.PrimitiveTypes.Float64, true
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		if dt.(arrow.DecimalType).GetScale() == 0 {
			return arrow.PrimitiveTypes.Int64, true
		}
		return arrow.PrimitiveTypes.Float64, true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return arrow.BinaryTypes.String, true
	case arrow.BOOL:
		return arrow.FixedWidthTypes.Boolean, true
	case arrow.TIMESTAMP:
		return arrow.FixedWidthTypes.Timestamp_us, true
	case arrow.DATE32, arrow.DATE64:
		return arrow.FixedWidthTypes.Date32, true
	case arrow.NULL:
		return arrow.Null, true
	case arrow.DICTIONARY:
		return Canonical(dt.(*arrow.DictionaryType).ValueType)
	case arrow.LIST, arrow.LARGE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW, arrow.FIXED_SIZE_LIST:
		elem, ok := Canonical(dt.(arrow.ListLikeType).Elem())
		if !ok {
			return nil, false
		}
		return arrow.ListOf(elem), true
	}
	return nil, false
}

// convert is Array without the error's context, for the nested calls.
func convert(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), to) {
		arr.Retain()
		return arr, nil
	}
	conv := find(arr.DataType(), to)
	if conv == nil {
		return nil, fmt.Errorf("no conversion from %s to %s", arr.DataType(), to)
	}
	return conv(mem, arr, to)
}

// rowError is a value that does not convert, with its row so that a list
// can name the row holding the element.
type rowError struct {
	row int
	err error
}

func (e *rowError) Error() string { return fmt.Sprintf("row %d: %v", e.row, e.err) }

// conversion converts arr to to, a type it is not.
type conversion func(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error)

// find picks the conversion from one type to another, nil when there is
// none. Convertible and Array both go through it so they cannot disagree.
func find(from, to arrow.DataType) conversion {
	switch from.ID() {
	case arrow.NULL:
		if isTarget(to) {
			return allNull
		}
		return nil
	case arrow.DICTIONARY:
		if Convertible(from.(*arrow.DictionaryType).ValueType, to) {
			return decode
		}
		return nil
	}
	id := from.ID()
	switch to.ID() {
	case arrow.INT64:
		switch {
		case isString(from):
			return parseInts
		case arrow.IsInteger(id):
			return cast
		case (id == arrow.DECIMAL32 || id == arrow.DECIMAL64) && from.(arrow.DecimalType).GetScale() == 0:
			return smallDecimalInts
		case id == arrow.DECIMAL128 || id == arrow.DECIMAL256:
			// A fraction that is not zero (2.5 for an int feature) is an
			// error of the safe cast, not a truncated value.
			return cast
		}
	case arrow.FLOAT64:
		switch {
		case isString(from):
			return parseFloats
		case id == arrow.DECIMAL32 || id == arrow.DECIMAL64:
			return smallDecimalFloats
		case arrow.IsInteger(id), id == arrow.FLOAT16, id == arrow.FLOAT32, isDecimal(from):
			return cast
		}
	case arrow.BOOL:
		if isString(from) {
			return parseBools
		}
	case arrow.STRING:
		switch {
		case isString(from):
			return cast
		case arrow.IsInteger(id):
			return decimalText
		}
	case arrow.BINARY:
		if id == arrow.LARGE_BINARY || id == arrow.BINARY_VIEW {
			return cast
		}
	case arrow.TIMESTAMP:
		switch {
		case isString(from):
			return parseTimes
		case id == arrow.TIMESTAMP:
			return rescale
		case id == arrow.DATE32, id == arrow.DATE64:
			return cast
		}
	case arrow.DATE32:
		switch {
		case isString(from):
			return parseDates
		case id == arrow.TIMESTAMP:
			return days
		case id == arrow.DATE64:
			return cast
		}
	case arrow.LIST:
		if isList(from) && Convertible(from.(arrow.ListLikeType).Elem(), to.(*arrow.ListType).Elem()) {
			return list
		}
	}
	return nil
}

// isTarget reports whether a type is one that some conversion answers,
// which is what a column of nulls may become.
func isTarget(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT64, arrow.FLOAT64, arrow.BOOL, arrow.STRING, arrow.BINARY,
		arrow.TIMESTAMP, arrow.DATE32, arrow.LIST:
		return true
	}
	return false
}

func isString(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	}
	return false
}

func isDecimal(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}

func isList(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW:
		return true
	}
	return false
}

// cast is arrow-go's own conversion, for the pairs where it is exact and
// frees everything it allocates (each is covered by a test run on a checked
// allocator). Safe options: an integer out of range, a decimal with a
// fraction or an integer beyond float64's 2^53 of exact integers is an
// error rather than a changed value.
func cast(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	return compute.CastArray(compute.WithAllocator(context.Background(), mem), arr, compute.SafeCastOptions(to))
}

func allNull(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	return array.MakeArrayOfNull(mem, to, arr.Len()), nil
}

// decode looks every index up in the dictionary, then converts the values.
// Take rather than compute's cast to the value type, which has no kernel
// for a dictionary of lists in arrow-go v18.8.
func decode(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	d := arr.(*array.Dictionary)
	plain, err := compute.TakeArray(compute.WithAllocator(context.Background(), mem), d.Dictionary(), d.Indices())
	if err != nil {
		return nil, err
	}
	defer plain.Release()
	return convert(mem, plain, to)
}
