package flight

import (
	"context"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight/sqlfront"
)

// tableType is the only table type: every feature class is a TABLE.
const tableType = "TABLE"

// metadataInfo is the FlightInfo of a metadata command: the command itself
// is the ticket, since answering it needs nothing else.
func (s *Server) metadataInfo(desc *arrowflight.FlightDescriptor, schema *arrow.Schema) *arrowflight.FlightInfo {
	return s.flightInfo(desc, schema, desc.Cmd)
}

// one streams a single record built by fill.
func (s *Server) one(ctx context.Context, schema *arrow.Schema, fill func(b *array.RecordBuilder)) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.opts.Mem, schema)
	defer b.Release()
	fill(b)
	ch := make(chan arrowflight.StreamChunk, 1)
	ch <- arrowflight.StreamChunk{Data: b.NewRecordBatch()}
	close(ch)
	return schema, ch, nil
}

func (s *Server) GetFlightInfoCatalogs(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.Catalogs), nil
}

func (s *Server) DoGetCatalogs(ctx context.Context) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	return s.one(ctx, schema_ref.Catalogs, func(b *array.RecordBuilder) {
		b.Field(0).(*array.StringBuilder).Append(sqlfront.Catalog)
	})
}

func (s *Server) GetFlightInfoSchemas(ctx context.Context, cmd flightsql.GetDBSchemas, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.DBSchemas), nil
}

func (s *Server) DoGetDBSchemas(ctx context.Context, cmd flightsql.GetDBSchemas) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	match, err := likeMatcher(cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, err
	}
	return s.one(ctx, schema_ref.DBSchemas, func(b *array.RecordBuilder) {
		if catalogMatches(cmd.GetCatalog()) && match(sqlfront.Schema) {
			b.Field(0).(*array.StringBuilder).Append(sqlfront.Catalog)
			b.Field(1).(*array.StringBuilder).Append(sqlfront.Schema)
		}
	})
}

func (s *Server) GetFlightInfoTables(ctx context.Context, cmd flightsql.GetTables, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return s.metadataInfo(desc, schema_ref.TablesWithIncludedSchema), nil
	}
	return s.metadataInfo(desc, schema_ref.Tables), nil
}

// DoGetTables lists the feature classes as tables; with include_schema,
// each with the Arrow schema of its columns (`SELECT *`).
func (s *Server) DoGetTables(ctx context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	matchSchema, err := likeMatcher(cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, err
	}
	matchTable, err := likeMatcher(cmd.GetTableNameFilterPattern())
	if err != nil {
		return nil, nil, err
	}
	typeOK := len(cmd.GetTableTypes()) == 0
	for _, t := range cmd.GetTableTypes() {
		typeOK = typeOK || strings.EqualFold(t, tableType)
	}
	schema := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		schema = schema_ref.TablesWithIncludedSchema
	}
	return s.one(ctx, schema, func(b *array.RecordBuilder) {
		if !typeOK || !catalogMatches(cmd.GetCatalog()) || !matchSchema(sqlfront.Schema) {
			return
		}
		for _, name := range s.graph.ClassNames() {
			if !matchTable(name) {
				continue
			}
			b.Field(0).(*array.StringBuilder).Append(sqlfront.Catalog)
			b.Field(1).(*array.StringBuilder).Append(sqlfront.Schema)
			b.Field(2).(*array.StringBuilder).Append(name)
			b.Field(3).(*array.StringBuilder).Append(tableType)
			if cmd.GetIncludeSchema() {
				ts := TableSchema(s.graph.Class(name))
				b.Field(4).(*array.BinaryBuilder).Append(arrowflight.SerializeSchema(ts, s.opts.Mem))
			}
		}
	})
}

// TableSchema is the Arrow schema of a class's table: one column per scalar
// feature (windows by their FQN), as `SELECT *` returns them, with Flight SQL
// column metadata naming the catalog, schema and table.
func TableSchema(c *features.Class) *arrow.Schema {
	var fields []arrow.Field
	for _, f := range sqlfront.ScalarFeatures(c) {
		md := flightsql.NewColumnMetadataBuilder().
			CatalogName(sqlfront.Catalog).SchemaName(sqlfront.Schema).TableName(c.Table).
			TypeName(f.Type.String()).IsReadOnly(true).Remarks(f.Description).Metadata()
		fields = append(fields, arrow.Field{Name: f.Name, Type: wireType(f.Type.Arrow()), Nullable: true, Metadata: md})
	}
	return arrow.NewSchema(fields, nil)
}

func (s *Server) GetFlightInfoTableTypes(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.TableTypes), nil
}

func (s *Server) DoGetTableTypes(ctx context.Context) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	return s.one(ctx, schema_ref.TableTypes, func(b *array.RecordBuilder) {
		b.Field(0).(*array.StringBuilder).Append(tableType)
	})
}

// catalogMatches: an absent catalog filter matches; an empty one means
// "without a catalog", which no fletch table is.
func catalogMatches(c *string) bool {
	return c == nil || strings.EqualFold(*c, sqlfront.Catalog)
}

// likeMatcher compiles a Flight SQL filter pattern (SQL LIKE: % any
// sequence, _ one character, \ escapes); nil matches everything.
func likeMatcher(pattern *string) (func(string) bool, error) {
	if pattern == nil {
		return func(string) bool { return true }, nil
	}
	var re strings.Builder
	re.WriteString("(?is)^")
	escaped := false
	for _, r := range *pattern {
		switch {
		case escaped:
			re.WriteString(regexp.QuoteMeta(string(r)))
			escaped = false
		case r == '\\':
			escaped = true
		case r == '%':
			re.WriteString(".*")
		case r == '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid filter pattern %q: %v", *pattern, err)
	}
	return rx.MatchString, nil
}
