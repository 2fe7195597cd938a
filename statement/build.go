package statement

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// Cond is one conjunct of a query's WHERE, whatever language it was written
// in: columns and the tuples of values they take (one tuple for `=`, one
// per element for IN). SQL text and Substrait plans both become Conds, so
// the rules for naming input rows are the same for both.
type Cond struct {
	// Cols are the column names as written; Build resolves them to key
	// columns of the class or AsOfColumn.
	Cols []string
	// At are the positions of Cols (zero when unknown).
	At     []expr.Pos
	Tuples [][]Value
	In     bool
}

// Value is one value of a Cond: a literal or a parameter.
type Value struct {
	// Lit is nil, bool, int64, float64, string or time.Time.
	Lit any
	// Param is the parameter's number, from 1; 0 for a literal.
	Param int
	At    expr.Pos
}

// Build makes the statement of a query that reads class, computes outputs,
// returns at most limit rows (-1: no limit) and names its input rows with
// conds (a conjunction). It is what Parse does once the SQL text is read,
// for front ends that read other languages.
func Build(class *features.Class, outputs []Output, conds []Cond, limit int64) (*Statement, error) {
	if len(outputs) == 0 {
		return nil, Errorf(InvalidInput, expr.Pos{}, "empty select list: name the columns of %s you want", class.Table)
	}
	if err := checkDepth(outputs); err != nil {
		return nil, err
	}
	st := &Statement{Class: class, Outputs: outputs, Limit: limit}
	if err := st.inputRows(conds); err != nil {
		return nil, err
	}
	return st.seal(), nil
}

// LookupTable resolves a table name to its feature class: name is the
// table alone or qualified by the schema, or by the catalog and the schema
// (empty qualifiers are left out).
func LookupTable(g *features.Graph, name []string, at expr.Pos) (*features.Class, error) {
	var written []string
	for _, n := range name {
		if n != "" {
			written = append(written, n)
		}
	}
	if len(written) == 0 || len(written) > 3 {
		return nil, Errorf(InvalidInput, at, "table name %q: expected <table>, %s.<table> or %s.%s.<table>", strings.Join(written, "."), Schema, Catalog, Schema)
	}
	table := written[len(written)-1]
	quals := written[:len(written)-1]
	if len(quals) == 2 && !strings.EqualFold(quals[0], Catalog) {
		return nil, Errorf(InvalidInput, at, "unknown catalog %q: the only catalog is %q", quals[0], Catalog)
	}
	if len(quals) > 0 && !strings.EqualFold(quals[len(quals)-1], Schema) {
		s := quals[len(quals)-1]
		return nil, suggested(Errorf(InvalidInput, at, "unknown schema %q: the only schema is %q", s, Schema), s, []string{Schema})
	}
	class := g.Class(table)
	if class == nil {
		return nil, suggested(Errorf(InvalidInput, at, "unknown table %q", table), table, g.ClassNames())
	}
	return class, nil
}

// CheckPath reports the first name of path that is not a feature of c,
// with the nearest valid name. Paths through has-one relations are
// followed; the planner checks what lies beyond a has-many.
func CheckPath(c *features.Class, path []string, at expr.Pos) error {
	for i, name := range path {
		f := c.Feature(name)
		if f == nil {
			return suggested(Errorf(InvalidInput, at, "unknown column %q of table %s", name, c.Table), name, c.FeatureNames())
		}
		if i == len(path)-1 {
			return nil
		}
		switch {
		case f.Kind == features.HasOne && f.Relation != nil:
			c = f.Relation.To
		case f.Kind == features.HasMany:
			return nil
		default:
			return Errorf(InvalidInput, at, "%s.%s is not a relation: it has no column %q", c.Table, f.Name, path[i+1])
		}
	}
	return nil
}

// KeyColumns are the columns that name a row of c in WHERE: the primary key,
// or, when the primary key is an expression (`id = _.user_id + "-" +
// _.item_id`), the features it is built from.
func KeyColumns(c *features.Class) (primary *features.Feature, parts []*features.Feature) {
	primary = c.Primary
	if primary == nil || primary.Expr == nil {
		return primary, nil
	}
	seen := map[string]bool{}
	expr.Walk(primary.Expr, func(n expr.Node) bool {
		if r, ok := n.(*expr.Ref); ok && len(r.Path) == 1 && !seen[r.Path[0]] {
			if f := c.Feature(r.Path[0]); f != nil {
				seen[r.Path[0]] = true
				parts = append(parts, f)
			}
		}
		return true
	})
	return primary, parts
}

// WhereHelp says what WHERE may contain, with the class's own key names.
func WhereHelp(c *features.Class) string {
	primary, parts := KeyColumns(c)
	key := "id"
	if primary != nil {
		key = primary.Name
	}
	s := fmt.Sprintf("a fletch query's WHERE names its input rows, with conditions joined by AND: %s = <value>, %s IN (<values>)", key, key)
	if len(parts) > 0 {
		eqs := make([]string, len(parts))
		for i, f := range parts {
			eqs[i] = f.Name + " = <value>"
		}
		s += ", " + strings.Join(eqs, " AND ")
	}
	return s + ", values or ? parameters, and " + AsOfColumn + " = <timestamp> for point-in-time rows"
}

// keyColumn resolves a column of WHERE: a key column or __as_of__.
func keyColumn(c *features.Class, name string, at expr.Pos) (string, error) {
	if strings.EqualFold(name, AsOfColumn) {
		return AsOfColumn, nil
	}
	f := c.Feature(name)
	if f == nil {
		return "", suggested(Errorf(InvalidInput, at, "unknown column %q of table %s", name, c.Table), name, append(c.FeatureNames(), AsOfColumn))
	}
	primary, parts := KeyColumns(c)
	if f == primary && len(parts) > 0 {
		// A derived key cannot be read backwards into the features it is
		// built from, and the features need them.
		eqs := make([]string, len(parts))
		for i, p := range parts {
			eqs[i] = p.Name + " = <value>"
		}
		def := fmt.Sprintf("%s = %s", f.Name, f.Expr)
		if f.Pos.Line > 0 {
			def += ", " + f.Pos.String()
		}
		return "", Errorf(InvalidInput, at, "%s.%s is derived from %s (%s): name the rows by those columns: WHERE %s", c.Table, f.Name, names(parts), def, strings.Join(eqs, " AND "))
	}
	if f == primary || indexOfFeature(parts, f) >= 0 {
		return f.Name, nil
	}
	return "", Errorf(InvalidInput, at, "%s is not a key column of %s, so it cannot select rows: %s", f.Name, c.Table, WhereHelp(c))
}

// inputRows sets the input columns, rows and parameters of st from the
// conjunction conds.
func (st *Statement) inputRows(conds []Cond) error {
	class := st.Class
	if len(conds) == 0 {
		return Errorf(InvalidInput, expr.Pos{}, "missing WHERE: %s", WhereHelp(class))
	}
	// Which column comes from which condition, and which one is the IN.
	conds = slices.Clone(conds)
	byCol := map[string]int{}
	inCond := -1
	for i := range conds {
		cd := &conds[i]
		cd.Cols, cd.At = slices.Clone(cd.Cols), slices.Clone(cd.At) // resolved below; the caller's stay as written
		if len(cd.Cols) == 0 {
			return Errorf(InvalidInput, expr.Pos{}, "a condition names no column: %s", WhereHelp(class))
		}
		for len(cd.At) < len(cd.Cols) {
			cd.At = append(cd.At, expr.Pos{})
		}
		for j, name := range cd.Cols {
			c, err := keyColumn(class, name, cd.At[j])
			if err != nil {
				return err
			}
			if _, dup := byCol[c]; dup {
				return Errorf(InvalidInput, cd.At[j], "%s is named twice in WHERE", c)
			}
			byCol[c] = i
			cd.Cols[j] = c
		}
		for _, tuple := range cd.Tuples {
			if len(tuple) != len(cd.Cols) {
				at := cd.At[0]
				if len(tuple) > 0 {
					at = tuple[0].At
				}
				return Errorf(InvalidInput, at, "IN element has %d values for %d columns (%s)", len(tuple), len(cd.Cols), strings.Join(cd.Cols, ", "))
			}
		}
		if len(cd.Tuples) == 0 {
			return Errorf(InvalidInput, cd.At[0], "IN takes a list of values")
		}
		if cd.In && len(cd.Tuples) > 1 {
			if inCond >= 0 {
				return Errorf(InvalidInput, cd.At[0], "only one IN list is allowed in WHERE; for keys of several columns write (%s) IN ((...), (...))", strings.Join(append(append([]string(nil), conds[inCond].Cols...), cd.Cols...), ", "))
			}
			inCond = i
		}
	}

	cols, err := keySet(class, byCol, conds)
	if err != nil {
		return err
	}
	if _, ok := byCol[AsOfColumn]; ok {
		cols = append(cols, AsOfColumn)
	}
	types := make([]arrow.DataType, len(cols))
	for i, c := range cols {
		types[i] = features.TimestampType
		if c != AsOfColumn {
			types[i] = class.Feature(c).Type.Arrow()
		}
		st.Inputs = append(st.Inputs, arrow.Field{Name: c, Type: types[i], Nullable: true})
	}

	nrows := 1
	if inCond >= 0 {
		nrows = len(conds[inCond].Tuples)
	}
	params := map[int]Param{}
	for r := range nrows {
		row := make([]cell, len(cols))
		for i, c := range cols {
			cd := conds[byCol[c]]
			tuple := cd.Tuples[0]
			if cd.In && len(cd.Tuples) > 1 {
				tuple = cd.Tuples[r]
			}
			v := tuple[indexOf(cd.Cols, c)]
			if v.Param > 0 {
				if nrows > 1 {
					return Errorf(InvalidInput, v.At, "parameters are not allowed in an IN list: write %s = ? and bind a batch of many parameter rows, one per input row", c)
				}
				if prev, ok := params[v.Param]; ok && prev.Column != c && !arrow.TypeEqual(prev.Type, types[i]) {
					return Errorf(InvalidInput, v.At, "parameter $%d is used for %s and %s, which have different types", v.Param, prev.Column, c)
				}
				if _, ok := params[v.Param]; !ok {
					params[v.Param] = Param{Column: c, Type: types[i], Pos: v.At}
				}
				row[i] = cell{param: v.Param - 1}
				continue
			}
			val, err := keyValue(v, c, types[i])
			if err != nil {
				return err
			}
			row[i] = cell{param: -1, value: val}
		}
		st.rows = append(st.rows, row)
	}
	for n := 1; n <= len(params); n++ {
		pa, ok := params[n]
		if !ok {
			return Errorf(InvalidInput, expr.Pos{}, "parameter $%d is not used (parameters are numbered from $1 without gaps)", n)
		}
		st.Params = append(st.Params, pa)
	}
	return nil
}

// keySet checks that the key columns in WHERE name rows of the class, and
// returns them in input order.
func keySet(class *features.Class, byCol map[string]int, conds []Cond) ([]string, error) {
	primary, parts := KeyColumns(class)
	if primary == nil {
		return nil, Errorf(InvalidInput, expr.Pos{}, "table %s has no primary key, so a query cannot name its rows", class.Table)
	}
	if _, ok := byCol[primary.Name]; ok {
		for _, f := range parts {
			if j, ok := byCol[f.Name]; ok {
				return nil, Errorf(InvalidInput, conds[j].At[indexOf(conds[j].Cols, f.Name)], "name rows of %s either by %s or by %s, not both", class.Table, primary.Name, names(parts))
			}
		}
		return []string{primary.Name}, nil
	}
	if len(parts) == 0 {
		return nil, Errorf(InvalidInput, expr.Pos{}, "WHERE does not name the key %s of %s: %s", primary.Name, class.Table, WhereHelp(class))
	}
	var cols, missing []string
	for _, f := range parts {
		if _, ok := byCol[f.Name]; ok {
			cols = append(cols, f.Name)
		} else {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, Errorf(InvalidInput, expr.Pos{}, "WHERE does not name the key of %s: give %s (missing %s): %s", class.Table, names(parts), strings.Join(missing, ", "), WhereHelp(class))
	}
	return cols, nil
}

// keyValue converts a WHERE literal to the Go value of the input column's
// Arrow type. An integer literal is accepted for a str key as its decimal
// text (load tools send `WHERE user.id = 123`).
func keyValue(val Value, col string, dt arrow.DataType) (any, error) {
	v := val.Lit
	if v == nil {
		return nil, Errorf(InvalidInput, val.At, "%s = NULL names no row: give a key value", col)
	}
	lit := &expr.Literal{Value: v}
	if t, ok := v.(time.Time); ok {
		lit.Value = t.UTC().Format(time.RFC3339Nano)
	}
	bad := func(want string) error {
		return Errorf(InvalidInput, val.At, "%s is not a valid %s for %s (%s)", lit, want, col, dt)
	}
	switch dt.ID() {
	case arrow.INT64:
		switch v := v.(type) {
		case int64:
			return v, nil
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, bad("integer")
			}
			return i, nil
		}
		return nil, bad("integer")
	case arrow.STRING:
		switch v := v.(type) {
		case string:
			return v, nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		}
		return nil, bad("string")
	case arrow.FLOAT64:
		switch v := v.(type) {
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case string:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, bad("number")
			}
			return f, nil
		}
		return nil, bad("number")
	case arrow.BOOL:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("boolean")
			}
			return b, nil
		}
		return nil, bad("boolean")
	case arrow.TIMESTAMP:
		var t time.Time
		switch v := v.(type) {
		case time.Time:
			t = v
		case string:
			var err error
			if t, err = coerce.ParseTime(v); err != nil {
				return nil, bad("timestamp (write it as '2026-01-01T00:00:00Z')")
			}
		default:
			return nil, bad("timestamp (write it as a string: '2026-01-01T00:00:00Z')")
		}
		return arrow.Timestamp(t.UnixMicro()), nil
	case arrow.DATE32:
		var t time.Time
		switch v := v.(type) {
		case time.Time:
			t = v
		case string:
			var err error
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return nil, bad("date (write it as '2026-01-01')")
			}
		default:
			return nil, bad("date (write it as '2026-01-01')")
		}
		return arrow.Date32FromTime(t), nil
	}
	return nil, Errorf(Unsupported, val.At, "keys of type %s are not supported in WHERE", dt)
}

func names(fs []*features.Feature) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Name
	}
	return strings.Join(s, " and ")
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func indexOfFeature(fs []*features.Feature, f *features.Feature) int {
	for i, x := range fs {
		if x == f {
			return i
		}
	}
	return -1
}
