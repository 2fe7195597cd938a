package offline

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/stores"
)

// appendRows appends a row per key and feature of v to rows; the values
// of one batch share one buffer.
func appendRows(rows []Row, v *stores.ComputedValues) ([]Row, error) {
	fqns := make([]string, v.Values.NumCols())
	for j, f := range v.Values.Schema().Fields() {
		fqns[j] = v.Class + "." + f.Name
	}
	var buf []byte
	type span struct{ start, end int }
	spans := make([]span, 0, int(v.Values.NumRows())*len(fqns))
	first := len(rows)
	for i := 0; i < v.Keys.Len(); i++ {
		if v.Keys.IsNull(i) {
			continue
		}
		key := strings.ReplaceAll(v.Keys.ValueStr(i), "\x00", "\uFFFD")
		for j, col := range v.Values.Columns() {
			start := len(buf)
			if col.IsValid(i) {
				var err error
				if buf, err = appendJSON(buf, col, i); err != nil {
					return rows, fmt.Errorf("%s: %w", fqns[j], err)
				}
			}
			spans = append(spans, span{start, len(buf)})
			rows = append(rows, Row{Class: v.Class, Key: key, Feature: fqns[j], Observed: v.Observed, TraceID: v.TraceID})
		}
	}
	// buf may have moved while growing: slice it once it is complete.
	for k, s := range spans {
		if s.end > s.start {
			rows[first+k].Value = buf[s.start:s.end:s.end]
		}
	}
	return rows, nil
}

// appendJSON appends value i (not null) of a as JSON: numbers and booleans
// as themselves, NaN and ±Inf as the strings "NaN", "Infinity",
// "-Infinity" (what Postgres and DuckDB cast to floats), timestamps as
// RFC 3339 strings in UTC, strings as JSON strings (with U+0000, which
// Postgres cannot store, as U+FFFD), dates as YYYY-MM-DD, binary as base64, lists as
// arrays and structs as objects (a null inside them is null).
func appendJSON(dst []byte, a arrow.Array, i int) ([]byte, error) {
	if a.IsNull(i) {
		return append(dst, "null"...), nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return strconv.AppendBool(dst, a.Value(i)), nil
	case *array.Int8:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.AppendInt(dst, int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.AppendInt(dst, a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.AppendUint(dst, uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.AppendUint(dst, a.Value(i), 10), nil
	case *array.Float32:
		return appendFloat(dst, float64(a.Value(i)), 32), nil
	case *array.Float64:
		return appendFloat(dst, a.Value(i), 64), nil
	case *array.String:
		return appendString(dst, a.Value(i)), nil
	case *array.LargeString:
		return appendString(dst, a.Value(i)), nil
	case *array.StringView:
		return appendString(dst, a.Value(i)), nil
	case *array.Binary:
		return appendBase64(dst, a.Value(i)), nil
	case *array.LargeBinary:
		return appendBase64(dst, a.Value(i)), nil
	case *array.Timestamp:
		toTime, err := a.DataType().(*arrow.TimestampType).GetToTimeFunc()
		if err != nil {
			return dst, err
		}
		dst = append(dst, '"')
		dst = toTime(a.Value(i)).UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"'), nil
	case *array.Date32:
		dst = append(dst, '"')
		dst = a.Value(i).ToTime().AppendFormat(dst, time.DateOnly)
		return append(dst, '"'), nil
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		dst = append(dst, '[')
		for k := start; k < end; k++ {
			if k > start {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSON(dst, a.ListValues(), int(k)); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		dst = append(dst, '{')
		for f := 0; f < a.NumField(); f++ {
			if f > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, st.Field(f).Name)
			dst = append(dst, ':')
			var err error
			if dst, err = appendJSON(dst, a.Field(f), i); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("values of type %s cannot be logged", a.DataType())
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			dst = utf8.AppendRune(dst, r) // an invalid byte is U+FFFD
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == 0:
			dst = append(dst, `\ufffd`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}
