package sql

import (
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/statement"
)

// Reader reads SQL text against one feature graph, remembering what it read:
// clients send the same texts again and again (a statement is read at
// GetFlightInfo and again at DoGet, whose ticket carries the text), and
// pg_query's parse of a wide select list costs more than planning it. It
// is safe for concurrent use, and its memory is bounded: the least recently
// used texts go first.
type Reader struct {
	graph *features.Graph
	// texts are the statements of texts read whole.
	texts *lru.Cache[string, *statement.Statement]
	// templates are the statements of template texts, by template: texts
	// that differ only in their key values share one parse. A nil
	// statement remembers a template that cannot be read (its literals are
	// not all key values), so it is not tried again.
	templates *lru.Cache[string, *statement.Statement]
}

// NewReader returns a reader of SQL text against g that keeps at most
// maxEntries statements in at most about maxBytes of memory.
func NewReader(g *features.Graph, maxEntries int, maxBytes int64) *Reader {
	return &Reader{
		graph:     g,
		texts:     lru.New[string, *statement.Statement](maxEntries/2, maxBytes/2, nil),
		templates: lru.New[string, *statement.Statement](maxEntries/2, maxBytes/2, nil),
	}
}

// Read is the statement of text (see Parse).
func (r *Reader) Read(text string) (*statement.Statement, error) {
	if st, ok := r.texts.Get(text); ok {
		return st, nil
	}
	if st, _ := r.fromTemplate(text); st != nil {
		return st, nil
	}
	st, err := Parse(r.graph, text)
	if err != nil {
		return nil, err
	}
	r.texts.Add(text, st, size(text, st))
	return st, nil
}

// ReadQuery is the statement or the relational query of text (see
// ParseQuery), and whether it was remembered (text or its template read
// before, no parse). Lookups are remembered as Read remembers them;
// relational queries are read each time (their execution dwarfs the
// parse).
func (r *Reader) ReadQuery(text string) (st *statement.Statement, rel *statement.Relational, remembered bool, err error) {
	if st, ok := r.texts.Get(text); ok {
		return st, nil, true, nil
	}
	if st, parsed := r.fromTemplate(text); st != nil {
		return st, nil, !parsed, nil
	}
	st, rel, err = ParseQuery(r.graph, text)
	if err != nil || rel != nil {
		return nil, rel, false, err
	}
	r.texts.Add(text, st, size(text, st))
	return st, nil, false, nil
}

// fromTemplate reads text through its template (see template): it is
// read once, and each text that differs only in its literal values is
// filled in from it. It returns nil when the text has no usable template;
// the caller then reads the text itself, which also gives the precise
// error for a text whose values do not fit. parsed: the template was
// read now, not remembered.
func (r *Reader) fromTemplate(text string) (st *statement.Statement, parsed bool) {
	tmpl, vals, ok := template(text)
	if !ok || len(vals) == 0 {
		return nil, false
	}
	t, ok := r.templates.Get(tmpl)
	if !ok {
		t, _ = Parse(r.graph, tmpl)
		r.templates.Add(tmpl, t, size(tmpl, t))
		parsed = true
	}
	if t == nil {
		return nil, parsed
	}
	st, err := t.WithValues(text, vals)
	if err != nil {
		return nil, parsed
	}
	return st, parsed
}

// size estimates the memory a remembered statement holds: its text, its
// key, and its syntax trees (which take a few times the text they were
// read from). It is checked against a real server's resident memory in
// docs/BENCHMARKS.md ("The plan cache's bound").
func size(text string, st *statement.Statement) int64 {
	n := int64(len(text)) + 128
	if st != nil {
		n += int64(len(st.Key())) + 4*int64(len(text)) + 256*int64(len(st.Outputs)+len(st.Inputs))
	}
	return n
}
