// Package substrait is the Substrait front end: it reads Substrait plans
// into statements (statement.Statement), as SQL text becomes: a named-table
// read is the feature class, filters name the input rows exactly as WHERE
// does, projections are the outputs and a fetch is the LIMIT. What a plan
// means beyond that (joins, aggregates, sorts, a fetch below a filter) has
// no feature-query meaning and is refused with an error naming the relation
// or function.
//
// It knows the Substrait protobuf messages, the feature graph and the
// statement type, and nothing of Flight, gRPC, the other front ends or
// execution. It must never panic on malformed bytes: the bytes come from
// any client. It walks the raw messages rather than substrait-go's typed
// plan, which refuses, misreads or panics on plans it must read
// (docs/SUBSTRAIT.md, TestWhyNotSubstraitGo).
package substrait

import (
	"encoding/json"
	"fmt"
	"strings"

	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/statement"
)

// Versions of the Substrait specification this package reads (the messages
// of substrait-protobuf v0.85.0); reported in SqlInfo.
const (
	MinVersion = "0.29.0"
	MaxVersion = "0.85.0"
)

// maxDepth bounds the nesting of relations and expressions a plan may have,
// so a hostile plan cannot exhaust the stack.
const maxDepth = 256

// Parse reads a Substrait plan in its protobuf encoding against g.
func Parse(g *features.Graph, plan []byte) (*statement.Statement, error) {
	var p pb.Plan
	if err := (proto.UnmarshalOptions{RecursionLimit: maxDepth}).Unmarshal(plan, &p); err != nil {
		return nil, errorf(statement.InvalidInput, "the Substrait plan is not a valid protobuf Plan message: %v", err)
	}
	return FromProto(g, &p)
}

// ParseJSON reads a Substrait plan in its JSON encoding (as producers such
// as DuckDB's substrait extension print them) against g. Fields of newer or
// older versions of the specification than this package's are ignored,
// except the pre-URN extension URIs, which name functions in errors.
func ParseJSON(g *features.Graph, plan []byte) (*statement.Statement, error) {
	var p pb.Plan
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: maxDepth}).Unmarshal(plan, &p); err != nil {
		return nil, errorf(statement.InvalidInput, "the Substrait plan is not a valid JSON Plan message: %v", err)
	}
	r := newReader(g, &p)
	r.legacyJSONURIs(plan)
	return r.plan(&p)
}

// FromProto reads a decoded Substrait plan against g.
func FromProto(g *features.Graph, p *pb.Plan) (*statement.Statement, error) {
	r := newReader(g, p)
	r.legacyProtoURIs(p)
	return r.plan(p)
}

func errorf(kind statement.ErrorKind, format string, args ...any) *statement.Error {
	return &statement.Error{Kind: kind, Msg: "Substrait plan: " + fmt.Sprintf(format, args...)}
}

// prefixed is err, an error of the statement package, as this package's
// errors read: its message prefixed, its kind and suggestion kept.
func prefixed(err error, prefix string) error {
	e := *err.(*statement.Error)
	e.Msg = "Substrait plan: " + prefix + e.Msg
	return &e
}

// function is a declared extension function.
type function struct {
	urn  string // the extension's URN (or URI, for plans older than URNs)
	name string // the compound name, e.g. "equal:any_any"
}

// base is the function's name without its signature.
func (f function) base() string {
	name, _, _ := strings.Cut(f.name, ":")
	return strings.ToLower(name)
}

func (f function) String() string {
	if f.urn == "" {
		return f.name
	}
	return f.urn + "#" + f.name
}

// reader holds the state of reading one plan.
type reader struct {
	graph *features.Graph
	funcs map[uint32]function
	urns  map[uint32]string
	class *features.Class
	conds []statement.Cond
	limit int64
}

func newReader(g *features.Graph, p *pb.Plan) *reader {
	r := &reader{graph: g, funcs: map[uint32]function{}, urns: map[uint32]string{}, limit: -1}
	for _, u := range p.GetExtensionUrns() {
		r.urns[u.GetExtensionUrnAnchor()] = u.GetUrn()
	}
	for _, d := range p.GetExtensions() {
		if f := d.GetExtensionFunction(); f != nil {
			r.funcs[f.GetFunctionAnchor()] = function{urn: r.urns[f.GetExtensionUrnReference()], name: f.GetName()}
		}
	}
	return r
}

// Plans older than Substrait 0.74 name extensions by URI: field 1 of Plan
// (SimpleExtensionURI{anchor = 1, uri = 2}) and field 1 of an extension
// function (extension_uri_reference). The current messages no longer have
// those fields, so they are read from the unknown fields.
const (
	legacyPlanURIs  = 1
	legacyURIAnchor = 1
	legacyURI       = 2
	legacyFuncURI   = 1
)

func (r *reader) legacyProtoURIs(p *pb.Plan) {
	uris := map[uint64]string{}
	eachField(p.ProtoReflect().GetUnknown(), func(num protowire.Number, v []byte) {
		if num != legacyPlanURIs {
			return
		}
		var anchor uint64
		var uri string
		eachField(v, func(n protowire.Number, fv []byte) {
			switch n {
			case legacyURIAnchor:
				anchor, _ = protowire.ConsumeVarint(fv)
			case legacyURI:
				uri = string(fv)
			}
		})
		uris[anchor] = uri
	})
	if len(uris) == 0 {
		return
	}
	for _, d := range p.GetExtensions() {
		f := d.GetExtensionFunction()
		if f == nil || f.GetExtensionUrnReference() != 0 {
			continue
		}
		eachField(f.ProtoReflect().GetUnknown(), func(num protowire.Number, v []byte) {
			if num == legacyFuncURI {
				ref, _ := protowire.ConsumeVarint(v)
				r.funcs[f.GetFunctionAnchor()] = function{urn: uris[ref], name: f.GetName()}
			}
		})
	}
}

// eachField calls fn with the number and payload (the varint's bytes, or
// the bytes of a length-delimited field) of each well-formed field of b,
// stopping at the first malformed one.
func eachField(b []byte, fn func(protowire.Number, []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		var payload []byte
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			payload, n = v, m
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			payload, n = b[:m], m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
		}
		fn(num, payload)
		b = b[n:]
	}
}

// legacyJSONURIs reads the pre-URN "extensionUris" of a JSON plan.
func (r *reader) legacyJSONURIs(plan []byte) {
	var legacy struct {
		ExtensionURIs []struct {
			Anchor uint32 `json:"extensionUriAnchor"`
			URI    string `json:"uri"`
		} `json:"extensionUris"`
		Extensions []struct {
			Function *struct {
				URIRef uint32 `json:"extensionUriReference"`
				Anchor uint32 `json:"functionAnchor"`
				Name   string `json:"name"`
			} `json:"extensionFunction"`
		} `json:"extensions"`
	}
	if json.Unmarshal(plan, &legacy) != nil || len(legacy.ExtensionURIs) == 0 {
		return
	}
	uris := map[uint32]string{}
	for _, u := range legacy.ExtensionURIs {
		uris[u.Anchor] = u.URI
	}
	for _, e := range legacy.Extensions {
		if f := e.Function; f != nil {
			if fn, ok := r.funcs[f.Anchor]; ok && fn.urn == "" {
				r.funcs[f.Anchor] = function{urn: uris[f.URIRef], name: f.Name}
			}
		}
	}
}

// plan reads the one root relation of p.
func (r *reader) plan(p *pb.Plan) (*statement.Statement, error) {
	switch len(p.GetRelations()) {
	case 0:
		return nil, errorf(statement.InvalidInput, "the plan has no relations: expected one root relation reading a feature class")
	case 1:
	default:
		return nil, errorf(statement.Unsupported, "the plan has %d relations: a fletch query is one root relation", len(p.GetRelations()))
	}
	pr := p.GetRelations()[0]
	rel, names := pr.GetRel(), []string(nil)
	if root := pr.GetRoot(); root != nil {
		rel, names = root.GetInput(), root.GetNames()
	}
	if rel == nil {
		return nil, errorf(statement.InvalidInput, "the plan's relation is empty")
	}
	cols, err := r.rel(rel, 0, false)
	if err != nil {
		return nil, err
	}
	if len(names) != 0 && len(names) != len(cols) {
		return nil, errorf(statement.InvalidInput, "the root names %d columns but its relation has %d", len(names), len(cols))
	}
	outs := make([]statement.Output, len(cols))
	for i, c := range cols {
		if c.base == statement.AsOfColumn {
			return nil, errorf(statement.InvalidInput, "%s is not a column of the result: it is only for the filter", statement.AsOfColumn)
		}
		outs[i] = statement.Output{Expr: c.node, Name: c.base}
		if len(names) > 0 {
			outs[i].Name = names[i]
		}
		if err := r.check(c); err != nil {
			return nil, err
		}
	}
	return statement.Build(r.class, outs, r.conds, r.limit)
}

// oneof names the field set in a message's oneof, for errors.
func oneof(m protoreflect.ProtoMessage, name protoreflect.Name) string {
	msg := m.ProtoReflect()
	od := msg.Descriptor().Oneofs().ByName(name)
	if od == nil {
		return "?"
	}
	fd := msg.WhichOneof(od)
	if fd == nil {
		return "none"
	}
	return string(fd.Name())
}
