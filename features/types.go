package features

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// TypeKind is the kind of a feature's value.
type TypeKind int

const (
	Unknown TypeKind = iota
	Int
	Float
	String
	Bool
	Datetime
	Date
	List
	// Struct is the row of a related class (HasOne), or of a has-many's
	// element (HasMany is a List of Struct).
	Struct
)

// Type is a feature's value type, from its annotation.
type Type struct {
	Kind     TypeKind
	Elem     *Type  // List
	Class    *Class // Struct
	Nullable bool
}

var kindNames = map[TypeKind]string{
	Unknown: "unknown", Int: "int", Float: "float", String: "str", Bool: "bool",
	Datetime: "datetime", Date: "date", List: "list", Struct: "struct",
}

func (t Type) String() string {
	s := kindNames[t.Kind]
	switch t.Kind {
	case List:
		if t.Elem != nil {
			s = "list[" + t.Elem.String() + "]"
		}
	case Struct:
		if t.Class != nil {
			s = t.Class.Name
		}
	}
	if t.Nullable {
		s += " | None"
	}
	return s
}

// TimestampType is the Arrow type of datetime features: microseconds, UTC.
var TimestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Arrow returns the Arrow type of values of t (DESIGN §4).
func (t Type) Arrow() arrow.DataType {
	switch t.Kind {
	case Int:
		return arrow.PrimitiveTypes.Int64
	case Float:
		return arrow.PrimitiveTypes.Float64
	case String:
		return arrow.BinaryTypes.String
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case Datetime:
		return TimestampType
	case Date:
		return arrow.FixedWidthTypes.Date32
	case List:
		if t.Elem == nil {
			return arrow.ListOf(arrow.Null)
		}
		return arrow.ListOf(t.Elem.Arrow())
	case Struct:
		if t.Class == nil {
			return arrow.StructOf()
		}
		var fields []arrow.Field
		for _, f := range t.Class.Features {
			if f.Kind != Scalar {
				continue
			}
			fields = append(fields, arrow.Field{Name: f.Name, Type: f.Type.Arrow(), Nullable: true})
		}
		return arrow.StructOf(fields...)
	}
	return arrow.Null
}
