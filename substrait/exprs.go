package substrait

import (
	"math"
	"strings"
	"time"

	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"

	"github.com/fletch-engine/fletch/statement"
)

// condition reads a filter condition into WHERE conditions: an `and` of
// `equal(key, value)`, `key IN (...)` as a SingularOrList or MultiOrList,
// and an `or` of equals (or of `and`s of equals over the same key columns),
// which is an IN list too.
func (r *reader) condition(e *pb.Expression, cols []column, of string) error {
	if fn := e.GetScalarFunction(); fn != nil {
		f, err := r.function(fn)
		if err != nil {
			return err
		}
		if f.base() == "and" {
			args, err := r.args(fn, f)
			if err != nil {
				return err
			}
			for _, a := range args {
				if err := r.condition(a, cols, of); err != nil {
					return err
				}
			}
			return nil
		}
		if f.base() == "or" {
			cd, err := r.disjunction(fn, f, cols, of)
			if err != nil {
				return err
			}
			r.conds = append(r.conds, cd)
			return nil
		}
	}
	cd, err := r.conjunct(e, cols, of)
	if err != nil {
		return err
	}
	r.conds = append(r.conds, cd)
	return nil
}

// conjunct reads one condition that is not an `and` or an `or`.
func (r *reader) conjunct(e *pb.Expression, cols []column, of string) (statement.Cond, error) {
	switch {
	case e.GetScalarFunction() != nil:
		fn := e.GetScalarFunction()
		f, err := r.function(fn)
		if err != nil {
			return statement.Cond{}, err
		}
		if f.base() != "equal" {
			return statement.Cond{}, errorf(statement.InvalidInput, "%s: unsupported condition (function %s): %s", of, f, r.help())
		}
		args, err := r.args(fn, f)
		if err != nil {
			return statement.Cond{}, err
		}
		if len(args) != 2 {
			return statement.Cond{}, errorf(statement.InvalidInput, "%s: %s takes 2 arguments, not %d", of, f, len(args))
		}
		col, val := args[0], args[1]
		if col.GetSelection() == nil {
			col, val = val, col
		}
		name, err := r.keyRef(col, cols, of)
		if err != nil {
			return statement.Cond{}, err
		}
		v, err := r.value(val, of)
		if err != nil {
			return statement.Cond{}, err
		}
		return statement.Cond{Cols: []string{name}, Tuples: [][]statement.Value{{v}}}, nil
	case e.GetSingularOrList() != nil:
		sl := e.GetSingularOrList()
		name, err := r.keyRef(sl.GetValue(), cols, of)
		if err != nil {
			return statement.Cond{}, err
		}
		cd := statement.Cond{Cols: []string{name}, In: true}
		for _, o := range sl.GetOptions() {
			v, err := r.value(o, of)
			if err != nil {
				return statement.Cond{}, err
			}
			cd.Tuples = append(cd.Tuples, []statement.Value{v})
		}
		return cd, nil
	case e.GetMultiOrList() != nil:
		ml := e.GetMultiOrList()
		cd := statement.Cond{In: true}
		for _, c := range ml.GetValue() {
			name, err := r.keyRef(c, cols, of)
			if err != nil {
				return statement.Cond{}, err
			}
			cd.Cols = append(cd.Cols, name)
		}
		for _, rec := range ml.GetOptions() {
			var tuple []statement.Value
			for _, f := range rec.GetFields() {
				v, err := r.value(f, of)
				if err != nil {
					return statement.Cond{}, err
				}
				tuple = append(tuple, v)
			}
			cd.Tuples = append(cd.Tuples, tuple)
		}
		return cd, nil
	}
	return statement.Cond{}, errorf(statement.InvalidInput, "%s: unsupported condition (%s expression): %s", of, oneof(e, "rex_type"), r.help())
}

// disjunction reads an `or` of key equalities as an IN list: each
// alternative names the same key columns.
func (r *reader) disjunction(fn *pb.Expression_ScalarFunction, f function, cols []column, of string) (statement.Cond, error) {
	args, err := r.args(fn, f)
	if err != nil {
		return statement.Cond{}, err
	}
	cd := statement.Cond{In: true}
	for i, a := range args {
		var parts []*pb.Expression
		if sub := a.GetScalarFunction(); sub != nil {
			sf, err := r.function(sub)
			if err != nil {
				return statement.Cond{}, err
			}
			if sf.base() == "and" {
				if parts, err = r.args(sub, sf); err != nil {
					return statement.Cond{}, err
				}
			}
		}
		if parts == nil {
			parts = []*pb.Expression{a}
		}
		if i > 0 && len(parts) != len(cd.Cols) {
			return statement.Cond{}, sameKeys(of, cd.Cols)
		}
		tuple := make([]statement.Value, len(parts))
		seen := make([]bool, len(parts))
		for j, p := range parts {
			eq, err := r.conjunct(p, cols, of)
			if err != nil {
				return statement.Cond{}, err
			}
			if eq.In {
				return statement.Cond{}, errorf(statement.InvalidInput, "%s: the alternatives of an or list key values with equal only", of)
			}
			k := j
			if i == 0 {
				cd.Cols = append(cd.Cols, eq.Cols[0])
			} else if k = indexOf(cd.Cols, eq.Cols[0]); k < 0 || seen[k] {
				return statement.Cond{}, sameKeys(of, cd.Cols)
			}
			seen[k] = true
			tuple[k] = eq.Tuples[0][0]
		}
		cd.Tuples = append(cd.Tuples, tuple)
	}
	return cd, nil
}

func sameKeys(of string, cols []string) error {
	return errorf(statement.InvalidInput, "%s: every alternative of an or must name the same key columns (%s), like the elements of an IN list", of, strings.Join(cols, ", "))
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// help says what a fletch plan's filter may contain.
func (r *reader) help() string {
	return "a fletch plan's filter names its input rows like SQL's WHERE: equal(key, literal) joined by and, key IN (...) as a SingularOrList or an or of equals, and equal(__as_of__, timestamp) for point-in-time rows"
}

// keyRef reads the column side of a condition: a field that passes a column
// of the read through (a key column or __as_of__; statement.Build checks which).
func (r *reader) keyRef(e *pb.Expression, cols []column, of string) (string, error) {
	if e.GetSelection() == nil {
		return "", errorf(statement.InvalidInput, "%s: expected a field reference to a key column, found a %s expression: %s", of, oneof(e, "rex_type"), r.help())
	}
	i, err := fieldIndex(e.GetSelection(), len(cols), of)
	if err != nil {
		return "", err
	}
	if cols[i].base == "" {
		return "", errorf(statement.InvalidInput, "%s: field %d is computed (%s), not a key column: %s", of, i, cols[i].node, r.help())
	}
	return cols[i].base, nil
}

// fieldIndex reads a direct reference to a top-level field of the input.
func fieldIndex(fr *pb.Expression_FieldReference, n int, of string) (int, error) {
	if fr.GetRootReference() == nil {
		return 0, errorf(statement.Unsupported, "%s: only references to the input row are supported (found %s)", of, oneof(fr, "root_type"))
	}
	sf := fr.GetDirectReference().GetStructField()
	if sf == nil {
		return 0, errorf(statement.Unsupported, "%s: only direct references to fields are supported", of)
	}
	if sf.GetChild() != nil {
		return 0, errorf(statement.Unsupported, "%s: references inside a field are not supported; name the feature (\"item.title\") in the base schema", of)
	}
	if sf.GetField() < 0 || int(sf.GetField()) >= n {
		return 0, errorf(statement.InvalidInput, "%s: field %d does not exist (the input has %d)", of, sf.GetField(), n)
	}
	return int(sf.GetField()), nil
}

// value reads the value side of a condition: a literal (maybe cast) or a
// dynamic parameter, which is a parameter of a prepared plan.
func (r *reader) value(e *pb.Expression, of string) (statement.Value, error) {
	if c := e.GetCast(); c != nil {
		e = c.GetInput()
	}
	if dp := e.GetDynamicParameter(); dp != nil {
		if dp.GetParameterReference() >= math.MaxInt32 {
			return statement.Value{}, errorf(statement.InvalidInput, "%s: parameter reference %d is out of range", of, dp.GetParameterReference())
		}
		return statement.Value{Param: int(dp.GetParameterReference()) + 1}, nil
	}
	l := e.GetLiteral()
	if l == nil {
		return statement.Value{}, errorf(statement.InvalidInput, "%s: expected a literal or a dynamic parameter, found a %s expression: %s", of, oneof(e, "rex_type"), r.help())
	}
	v, err := literal(l)
	if err != nil {
		return statement.Value{}, err
	}
	return statement.Value{Lit: v}, nil
}

// literal converts a literal to nil, bool, int64, float64, string or
// time.Time (UTC).
func literal(l *pb.Expression_Literal) (any, error) {
	switch v := l.GetLiteralType().(type) {
	case *pb.Expression_Literal_Null:
		return nil, nil
	case *pb.Expression_Literal_Boolean:
		return v.Boolean, nil
	case *pb.Expression_Literal_I8:
		return int64(v.I8), nil
	case *pb.Expression_Literal_I16:
		return int64(v.I16), nil
	case *pb.Expression_Literal_I32:
		return int64(v.I32), nil
	case *pb.Expression_Literal_I64:
		return v.I64, nil
	case *pb.Expression_Literal_Fp32:
		return float64(v.Fp32), nil
	case *pb.Expression_Literal_Fp64:
		return v.Fp64, nil
	case *pb.Expression_Literal_String_:
		return v.String_, nil
	case *pb.Expression_Literal_VarChar_:
		return v.VarChar.GetValue(), nil
	case *pb.Expression_Literal_FixedChar:
		return v.FixedChar, nil
	case *pb.Expression_Literal_Date:
		return time.Unix(int64(v.Date)*86400, 0).UTC(), nil
	case *pb.Expression_Literal_Timestamp:
		return time.UnixMicro(v.Timestamp).UTC(), nil
	case *pb.Expression_Literal_TimestampTz:
		return time.UnixMicro(v.TimestampTz).UTC(), nil
	case *pb.Expression_Literal_PrecisionTimestamp_:
		return precisionTime(v.PrecisionTimestamp)
	case *pb.Expression_Literal_PrecisionTimestampTz:
		return precisionTime(v.PrecisionTimestampTz)
	}
	return nil, errorf(statement.Unsupported, "%s literals are not supported", oneof(l, "literal_type"))
}

// precisionTime converts a timestamp with 0 (seconds) to 12 (picoseconds)
// fractional digits.
func precisionTime(t *pb.Expression_Literal_PrecisionTimestamp) (time.Time, error) {
	p := t.GetPrecision()
	if p < 0 || p > 12 {
		return time.Time{}, errorf(statement.InvalidInput, "timestamp precision %d is outside 0..12", p)
	}
	v := t.GetValue()
	if p <= 9 {
		scale := int64(math.Pow10(int(9 - p)))
		sec, frac := v/int64(math.Pow10(int(p))), v%int64(math.Pow10(int(p)))
		return time.Unix(sec, frac*scale).UTC(), nil
	}
	div := int64(math.Pow10(int(p - 9)))
	nanos := v / div
	return time.Unix(0, nanos).UTC(), nil
}
