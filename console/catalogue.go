package console

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// Catalogue is what a viewer may see of a repository: its classes with
// their features, the relations between them (the graph the catalogue
// page draws) and the resolvers.
type Catalogue struct {
	Classes   []ClassView    `json:"classes"`
	Relations []RelationView `json:"relations"`
	Resolvers []ResolverView `json:"resolvers"`
}

// ClassView is one feature class.
type ClassView struct {
	Name         string        `json:"name"`  // UserItem
	Table        string        `json:"table"` // user_item
	Pos          string        `json:"pos"`   // file:line:col in the repository
	Owner        string        `json:"owner,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Primary      string        `json:"primary,omitempty"`
	EventTime    string        `json:"event_time,omitempty"`
	MaxStaleness string        `json:"max_staleness,omitempty"`
	Features     []FeatureView `json:"features"`
}

// FeatureView is one feature (a windowed feature once, with its windows).
type FeatureView struct {
	Name            string   `json:"name"`
	FQN             string   `json:"fqn"` // table.name
	Kind            string   `json:"kind"`
	Type            string   `json:"type"`
	Description     string   `json:"description,omitempty"`
	Owner           string   `json:"owner,omitempty"`
	Tags            []string `json:"tags,omitempty"`
	Windows         []string `json:"windows,omitempty"`
	MaxStaleness    string   `json:"max_staleness,omitempty"`
	Materialization string   `json:"materialization,omitempty"`
	Validations     []string `json:"validations,omitempty"`
	Default         string   `json:"default,omitempty"`
	// ComputedBy is how the feature gets its value: "expression",
	// "sql resolver", "python resolver", "relation", "windows", "input".
	ComputedBy string `json:"computed_by"`
	Resolver   string `json:"resolver,omitempty"`
	Expression string `json:"expression,omitempty"`
	Primary    bool   `json:"primary,omitempty"`
	Pos        string `json:"pos"`
}

// RelationView is a has-one or has-many feature between two visible
// classes.
type RelationView struct {
	From    string `json:"from"` // table
	To      string `json:"to"`
	Feature string `json:"feature"`
	Many    bool   `json:"many"`
	On      string `json:"on"` // user.id = review.user_id
}

// ResolverView is a SQL or Python resolver.
type ResolverView struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Class   string   `json:"class"`
	Source  string   `json:"source,omitempty"`
	Mode    string   `json:"mode,omitempty"` // python: expression or python
	Outputs []string `json:"outputs"`
	Query   string   `json:"query,omitempty"`
	Pos     string   `json:"pos"`
}

// catalogue shapes g for v: the classes v may not read appear nowhere,
// nor do relations to them, and a feature computed from them shows no
// expression.
func catalogue(g *features.Graph, d *deps, v viewer) Catalogue {
	out := Catalogue{Classes: []ClassView{}, Relations: []RelationView{}, Resolvers: []ResolverView{}}
	classes := append([]*features.Class(nil), g.Classes...)
	sort.Slice(classes, func(i, j int) bool { return classes[i].Table < classes[j].Table })
	for _, c := range classes {
		if !v.canRead(c.Table) {
			continue
		}
		cv := ClassView{Name: c.Name, Table: c.Table, Pos: relPos(g, c.Pos), Owner: optString(c.Options["owner"]), Tags: optStrings(c.Options["tags"]),
			MaxStaleness: staleness(c.MaxStaleness), Features: []FeatureView{}}
		if c.Primary != nil {
			cv.Primary = c.Primary.Name
		}
		if c.EventTime != nil {
			cv.EventTime = c.EventTime.Name
		}
		for _, f := range c.Features {
			if f.Window != nil { // shown with its group
				continue
			}
			if f.Relation != nil {
				if !v.canRead(f.Relation.To.Table) {
					continue
				}
				out.Relations = append(out.Relations, RelationView{From: c.Table, To: f.Relation.To.Table, Feature: f.Name, Many: f.Relation.Many,
					On: f.Relation.FromKey.QualifiedName() + " = " + f.Relation.ToKey.QualifiedName()})
			}
			cv.Features = append(cv.Features, featureView(g, d, v, f, cv))
		}
		out.Classes = append(out.Classes, cv)
	}
	for _, r := range g.SQLResolvers {
		if r.Resolves == nil || !v.canRead(r.Resolves.Table) {
			continue
		}
		rv := ResolverView{Name: r.Name, Kind: kindSQL, Class: r.Resolves.Table, Source: r.Source, Query: strings.TrimSpace(r.Query), Pos: relPos(g, r.Pos), Outputs: []string{}}
		for _, cm := range r.Columns {
			if cm.Feature != nil {
				rv.Outputs = append(rv.Outputs, cm.Feature.QualifiedName())
			}
		}
		out.Resolvers = append(out.Resolvers, rv)
	}
	for _, r := range g.PyResolvers {
		if !v.canReadAll(classesOf(d, ref{py: r})) {
			continue
		}
		rv := ResolverView{Name: r.Name, Kind: kindPython, Mode: r.Mode.String(), Pos: relPos(g, r.Pos), Outputs: []string{}}
		for _, f := range r.Outputs {
			rv.Outputs = append(rv.Outputs, f.QualifiedName())
			rv.Class = f.Class.Table
		}
		out.Resolvers = append(out.Resolvers, rv)
	}
	return out
}

// classesOf lists the classes r reads, however far.
func classesOf(d *deps, r ref) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(r ref)
	visited := map[string]bool{}
	walk = func(r ref) {
		if visited[r.id()] {
			return
		}
		visited[r.id()] = true
		if c := r.class(); c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
		for _, x := range d.of(r) {
			walk(x)
		}
	}
	walk(r)
	return out
}

func featureView(g *features.Graph, d *deps, v viewer, f *features.Feature, c ClassView) FeatureView {
	fv := FeatureView{Name: f.Name, FQN: f.QualifiedName(), Kind: kindName(f.Kind), Type: typeName(f), Description: f.Description,
		Owner: optString(f.Options["owner"]), Tags: optStrings(f.Options["tags"]), MaxStaleness: staleness(f.MaxStaleness),
		Primary: f.Primary, Pos: relPos(g, f.Pos)}
	if fv.Owner == "" {
		fv.Owner = c.Owner
	}
	if f.Default != nil {
		fv.Default = f.Default.String()
	}
	for _, val := range f.Validations {
		fv.Validations = append(fv.Validations, validation(val))
	}
	fv.ComputedBy, fv.Resolver = d.producer(f)
	visible := v.canReadAll(classesOf(d, ref{feature: f}))
	switch {
	case !visible:
		fv.ComputedBy, fv.Resolver = "hidden", ""
	case f.Kind == features.WindowedGroup:
		for _, w := range f.Windows {
			fv.Windows = append(fv.Windows, w.Window.Label)
		}
		if len(f.Windows) > 0 && f.Windows[0].Expr != nil {
			fv.Expression = f.Windows[0].Expr.String()
		}
		if m := f.Materialization; m != nil {
			fv.Materialization = "tiles of " + formatDuration(m.BucketDuration)
			if m.BackfillSchedule != "" {
				fv.Materialization += ", backfill " + m.BackfillSchedule
			}
		}
	case f.Expr != nil:
		fv.Expression = f.Expr.String()
	}
	return fv
}

func kindName(k features.FeatureKind) string {
	switch k {
	case features.HasOne:
		return "has-one"
	case features.HasMany:
		return "has-many"
	case features.WindowedGroup:
		return "windowed"
	}
	return "scalar"
}

func typeName(f *features.Feature) string {
	switch f.Kind {
	case features.HasOne:
		return f.Relation.To.Name
	case features.HasMany:
		return "DataFrame[" + f.Relation.To.Name + "]"
	case features.WindowedGroup:
		if len(f.Windows) > 0 {
			return "Windowed[" + f.Windows[0].Type.String() + "]"
		}
	}
	return f.Type.String()
}

func staleness(s features.Staleness) string {
	switch {
	case !s.Set:
		return ""
	case s.Infinite:
		return "infinity"
	}
	return formatDuration(s.Duration)
}

// formatDuration writes d as the definitions do: 7d, 1h, 10m.
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d > 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}

// relPos is p relative to the repository's folder: a page shows no server
// paths.
func relPos(g *features.Graph, p expr.Pos) string {
	if g.Dir != "" && p.File != "" {
		if rel, err := filepath.Rel(g.Dir, p.File); err == nil && !strings.HasPrefix(rel, "..") {
			p.File = rel
		} else {
			p.File = filepath.Base(p.File)
		}
	}
	return p.String()
}

// optString is a string option (`owner="ml@x.com"`), "" otherwise.
func optString(n expr.Node) string {
	if l, ok := n.(*expr.Literal); ok {
		if s, ok := l.Value.(string); ok {
			return s
		}
	}
	return ""
}

// optStrings is a string or list-of-strings option (`tags=["a", "b"]`).
func optStrings(n expr.Node) []string {
	var out []string
	expr.Walk(n, func(x expr.Node) bool {
		if s := optString(x); s != "" {
			out = append(out, s)
		}
		return true
	})
	return out
}

// validation writes bounds as feature(...) does: "min=1, max=5, strict".
func validation(v *features.Validation) string {
	var parts []string
	if v.Min != nil {
		parts = append(parts, "min="+v.Min.String())
	}
	if v.Max != nil {
		parts = append(parts, "max="+v.Max.String())
	}
	if v.MinLength >= 0 {
		parts = append(parts, "min_length="+strconv.FormatInt(v.MinLength, 10))
	}
	if v.MaxLength >= 0 {
		parts = append(parts, "max_length="+strconv.FormatInt(v.MaxLength, 10))
	}
	if v.Strict {
		parts = append(parts, "strict")
	}
	return strings.Join(parts, ", ")
}
