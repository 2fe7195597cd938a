// Package sqlload reads the SQL resolvers of a feature repository: `.sql`
// and `.chalk.sql` files made of `-- key: value` header comments (`resolves:`
// names the feature class, `source:` the source) and one SELECT whose result
// columns fill the class's features by name.
//
// The query is validated and its select list read with pg_query (the
// PostgreSQL parser); it is never executed here. The package knows the
// feature graph (to map columns and placeholders) but nothing about sources,
// connections or query planning.
package sqlload

import (
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/suggest"
)

func init() {
	features.RegisterLoader(features.Loader{
		Name:  "sql",
		Phase: 1, // after the Python classes exist
		Match: func(name string) bool { return strings.HasSuffix(name, ".sql") },
		Load:  Load,
	})
}

// Load reads files into g.SQLResolvers; the classes must be in g already.
func Load(g *features.Graph, files []features.SourceFile) error {
	var errs []error
	for _, f := range files {
		r, err := ParseFile(g, f.Path, f.Src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.SQLResolvers = append(g.SQLResolvers, r)
	}
	return errors.Join(errs...)
}

// file is one SQL file being read; offsets are byte offsets into src.
type file struct {
	graph *features.Graph
	path  string
	src   string
	errs  []error
}

// pos turns a byte offset into a 1-based line and character column.
func (f *file) pos(off int) features.Pos {
	off = min(max(off, 0), len(f.src))
	line := 1 + strings.Count(f.src[:off], "\n")
	start := strings.LastIndexByte(f.src[:off], '\n') + 1
	return features.Pos{File: f.path, Line: line, Col: utf8.RuneCountInString(f.src[start:off]) + 1}
}

func (f *file) errorf(off int, format string, args ...any) {
	f.errs = append(f.errs, features.Errorf(f.pos(off), format, args...))
}

// The headers a resolver may have. fletch implements resolves, source and
// timeout; owner, description and tags document the resolver and do
// nothing else, as in the seeds; the others are Chalk's, and fletch does
// not implement them yet.
var (
	implementedHeaders = []string{"resolves", "source", "timeout", "owner", "description", "tags"}
	chalkHeaders       = []string{"type", "cron", "incremental", "max_staleness", "environment", "count", "total", "fields", "incremental_column", "lookback_period", "mode"}
)

// checkHeaders warns about the headers fletch does nothing with: Chalk's
// that are not implemented yet, and unknown ones (a typo of a known one).
func (f *file) checkHeaders(r *features.SQLResolver, at map[string]int) {
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	// in the order they are written, as validate prints them
	sort.Slice(keys, func(i, j int) bool { return at[keys[i]] < at[keys[j]] })
	for _, k := range keys {
		switch {
		case slices.Contains(implementedHeaders, k):
		case slices.Contains(chalkHeaders, k):
			f.graph.Warnf(f.pos(at[k]), "header %q is not supported yet: it is ignored", k)
		default:
			f.graph.Warnf(f.pos(at[k]), "unknown header %q: it is ignored%s", k, suggest.DidYouMean(k, append(slices.Clone(implementedHeaders), chalkHeaders...)))
		}
	}
}

var headerRe = regexp.MustCompile(`^--\s*([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*?)\s*$`)

// placeholderRe matches `${now}` and `${user.id}`.
var placeholderRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// ParseFile reads the SQL resolver in src, resolving its class, columns and
// placeholders in g. path is used in positions and names the resolver.
func ParseFile(g *features.Graph, path string, src []byte) (*features.SQLResolver, error) {
	f := &file{graph: g, path: path, src: string(src)}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".sql"), ".chalk")
	r := &features.SQLResolver{Name: name, File: path, Headers: map[string]string{}, Pos: f.pos(0)}

	// The header: leading comment lines; `-- key: value` ones are headers.
	off := 0
	headerAt := map[string]int{}
	for off < len(f.src) {
		end := strings.IndexByte(f.src[off:], '\n')
		if end < 0 {
			end = len(f.src) - off
		}
		line := strings.TrimSpace(f.src[off : off+end])
		if line != "" && !strings.HasPrefix(line, "--") {
			break
		}
		if m := headerRe.FindStringSubmatch(line); m != nil {
			key := strings.ToLower(m[1])
			if _, dup := r.Headers[key]; dup {
				f.errorf(off, "header %q is given twice (first on line %d)", key, f.pos(headerAt[key]).Line)
			}
			r.Headers[key], headerAt[key] = m[2], off
		}
		off += end + 1
	}
	body := f.src[min(off, len(f.src)):]
	lead := len(body) - len(strings.TrimLeft(body, " \t\r\n"))
	queryAt := off + lead
	r.Query = strings.TrimRightFunc(body[lead:], func(c rune) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' })
	f.checkHeaders(r, headerAt)
	r.Source = r.Headers["source"]
	if t, ok := r.Headers["timeout"]; ok {
		d, err := features.ParseDuration(t)
		if err != nil || d <= 0 {
			f.errorf(headerAt["timeout"], "timeout: expected a duration such as 500ms or 2s, found %q", t)
		}
		r.Timeout = d
	}

	if cls, ok := r.Headers["resolves"]; !ok {
		f.errorf(0, "missing header `-- resolves: Class` naming the feature class this query fills")
	} else if r.Resolves = g.Class(cls); r.Resolves == nil {
		names := make([]string, 0, len(g.Classes))
		for _, c := range g.Classes {
			names = append(names, c.Name)
		}
		f.errorf(headerAt["resolves"], "resolves: unknown feature class %s%s", cls, suggest.DidYouMean(cls, names))
	}
	if r.Query == "" {
		f.errorf(queryAt, "expected a SELECT query after the header comments")
		return r, errors.Join(f.errs...)
	}

	// Placeholders become $1..$n. The text given to the parser pads each
	// one to its original width so parser positions stay file positions.
	var padded strings.Builder
	numbers := map[string]int{}
	last := 0
	for _, m := range placeholderRe.FindAllStringSubmatchIndex(r.Query, -1) {
		text := strings.TrimSpace(r.Query[m[2]:m[3]])
		n, seen := numbers[text]
		if !seen {
			if p, ok := f.param(g, text, queryAt+m[0]); ok {
				r.Params = append(r.Params, p)
			}
			n = len(numbers) + 1
			numbers[text] = n
		}
		num := "$" + strconv.Itoa(n)
		padded.WriteString(r.Query[last:m[0]])
		padded.WriteString(num + strings.Repeat(" ", m[1]-m[0]-len(num)))
		last = m[1]
	}
	padded.WriteString(r.Query[last:])
	r.Query = placeholderRe.ReplaceAllStringFunc(r.Query, func(s string) string {
		return "$" + strconv.Itoa(numbers[strings.TrimSpace(s[2:len(s)-1])])
	})

	f.columns(r, padded.String(), queryAt)
	return r, errors.Join(f.errs...)
}

// param resolves a placeholder's text: `now` or `class.feature`.
func (f *file) param(g *features.Graph, text string, off int) (features.Param, bool) {
	if text == "now" {
		return features.Param{Text: text, Now: true}, true
	}
	cls, feat, ok := strings.Cut(text, ".")
	if !ok {
		f.errorf(off, "placeholder ${%s}: expected ${now} or ${class.feature}, e.g. ${user.id}", text)
		return features.Param{}, false
	}
	c := g.Class(cls)
	if c == nil {
		f.errorf(off, "placeholder ${%s}: unknown feature class %s%s", text, cls, suggest.DidYouMean(cls, g.ClassNames()))
		return features.Param{}, false
	}
	ft := c.Feature(feat)
	if ft == nil {
		f.errorf(off, "placeholder ${%s}: %s has no feature %s%s", text, c.Name, feat, suggest.DidYouMean(feat, c.FeatureNames()))
		return features.Param{}, false
	}
	return features.Param{Text: text, Feature: ft}, true
}

// columns validates the query and maps its result columns to features.
func (f *file) columns(r *features.SQLResolver, query string, queryAt int) {
	tree, err := pg.Parse(query)
	if err != nil {
		var pe *pgparser.Error
		at := queryAt
		if errors.As(err, &pe) && pe.Cursorpos > 0 {
			at += runeOffset(query, pe.Cursorpos-1)
		}
		f.errorf(at, "SQL syntax error: %s", err)
		return
	}
	if len(tree.Stmts) != 1 {
		f.errorf(queryAt, "a SQL resolver is one SELECT statement, found %d statements", len(tree.Stmts))
		return
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil {
		f.errorf(queryAt, "a SQL resolver is a SELECT query")
		return
	}
	for sel.Larg != nil { // UNION and friends take their names from the first branch
		sel = sel.Larg
	}
	if len(sel.TargetList) == 0 {
		return // VALUES lists: names are known at execution
	}
	seen := map[string]bool{}
	var cols []features.ColumnMap
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		at := queryAt + int(rt.Location)
		name := rt.Name
		if name == "" {
			var star bool
			name, star = outputName(rt.Val)
			if star {
				return // `*`: the columns are mapped at execution
			}
		}
		if name == "" {
			f.errorf(at, "select list entry %q has no name: add `AS feature_name`", firstLine(query[rt.Location:]))
			continue
		}
		if seen[name] {
			f.errorf(at, "column %s is selected twice", name)
			continue
		}
		seen[name] = true
		if r.Resolves == nil {
			continue
		}
		ft := r.Resolves.Feature(name)
		switch {
		case ft == nil:
			// The tutorial selects columns before it declares their
			// features: a warning, and the column is not read.
			f.graph.Warnf(f.pos(at), "column %s matches no feature of %s, so it is ignored%s", name, r.Resolves.Name, suggest.DidYouMean(name, scalarNames(r.Resolves)))
		case ft.Kind == features.WindowedGroup:
			f.errorf(at, "column %s: %s.%s is windowed; select its windows by their names (%s)", name, r.Resolves.Name, name, windowNames(ft))
		case ft.Kind == features.HasMany:
			f.errorf(at, "column %s: %s.%s is a has-many relation, not a column: its rows come from %s's own resolver", name, r.Resolves.Name, name, ft.Type.Elem.Class.Name)
		case ft.Kind == features.HasOne && ft.Relation != nil:
			f.errorf(at, "column %s: %s.%s is a relation, not a column; select its foreign key %s instead", name, r.Resolves.Name, name, ft.Relation.FromKey.Name)
		case ft.Kind == features.HasOne:
			f.errorf(at, "column %s: %s.%s is a relation, not a column", name, r.Resolves.Name, name)
		default:
			cols = append(cols, features.ColumnMap{Column: name, Feature: ft})
		}
	}
	r.Columns = cols
}

// outputName is the name PostgreSQL gives an unnamed select-list entry, and
// whether it is a `*`.
func outputName(n *pg.Node) (string, bool) {
	switch {
	case n.GetColumnRef() != nil:
		fields := n.GetColumnRef().Fields
		last := fields[len(fields)-1]
		if last.GetAStar() != nil {
			return "", true
		}
		return last.GetString_().GetSval(), false
	case n.GetFuncCall() != nil:
		fn := n.GetFuncCall().Funcname
		return fn[len(fn)-1].GetString_().GetSval(), false
	case n.GetTypeCast() != nil:
		return outputName(n.GetTypeCast().Arg)
	}
	return "", false
}

func scalarNames(c *features.Class) []string {
	var names []string
	for _, f := range c.Features {
		if f.Kind == features.Scalar {
			names = append(names, f.Name)
		}
	}
	return names
}

func windowNames(group *features.Feature) string {
	names := make([]string, len(group.Windows))
	for i, w := range group.Windows {
		names[i] = w.Name
	}
	return strings.Join(names, ", ")
}

// runeOffset is the byte offset of the n-th character of s.
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, ",\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
