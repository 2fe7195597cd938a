package flight

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/statement"
)

// tableType is the only table type: every feature class is a TABLE.
const tableType = "TABLE"

// metadataInfo is the FlightInfo of a metadata command: the command itself
// is the ticket, since answering it needs nothing else.
func (s *Server) metadataInfo(desc *arrowflight.FlightDescriptor, schema *arrow.Schema) *arrowflight.FlightInfo {
	return s.flightInfo(desc, arrowflight.SerializeSchema(schema, s.opts.Mem), desc.Cmd)
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
		b.Field(0).(*array.StringBuilder).Append(statement.Catalog)
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
		if catalogMatches(cmd.GetCatalog()) && match(statement.Schema) {
			b.Field(0).(*array.StringBuilder).Append(statement.Catalog)
			b.Field(1).(*array.StringBuilder).Append(statement.Schema)
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
		if !typeOK || !catalogMatches(cmd.GetCatalog()) || !matchSchema(statement.Schema) {
			return
		}
		for _, c := range s.classes(ctx) {
			if !matchTable(c.Table) {
				continue
			}
			b.Field(0).(*array.StringBuilder).Append(statement.Catalog)
			b.Field(1).(*array.StringBuilder).Append(statement.Schema)
			b.Field(2).(*array.StringBuilder).Append(c.Table)
			b.Field(3).(*array.StringBuilder).Append(tableType)
			if cmd.GetIncludeSchema() {
				ts := TableSchema(c, func(t string) bool { return s.canRead(ctx, t) })
				b.Field(4).(*array.BinaryBuilder).Append(arrowflight.SerializeSchema(ts, s.opts.Mem))
			}
		}
	})
}

// TableSchema is the Arrow schema of a class's table: one column per scalar
// feature (windows by their FQN), as `SELECT *` returns them, then one per
// scalar feature of each has-one relation whose class visible allows
// (`"item.title"`, one level deep: what a BI tool can pick from a list),
// with the Flight SQL column metadata JDBC's getColumns reads: catalog,
// schema and table, the SQL type name with its precision and scale (as
// GetXdbcTypeInfo lists them), remarks (the feature's description, owner
// and tags), and which columns WHERE may filter (all of them: a condition
// beyond the keys runs as SQL over the features).
func TableSchema(c *features.Class, visible func(table string) bool) *arrow.Schema {
	var fields []arrow.Field
	add := func(name string, f *features.Feature, table *features.Class, via string) {
		dt := wireType(f.Type.Arrow())
		st := sqlTypeOf(dt)
		md := flightsql.NewColumnMetadataBuilder().
			CatalogName(statement.Catalog).SchemaName(statement.Schema).TableName(c.Table).
			TypeName(st.name).IsAutoIncrement(false).IsCaseSensitive(st.caseSensitive).
			IsReadOnly(true).IsSearchable(true)
		if st.precision != nil {
			md.Precision(*st.precision)
		}
		if st.scale != nil {
			md.Scale(*st.scale)
		}
		if r := remarks(f, table, via); r != "" {
			md.Remarks(r)
		}
		fields = append(fields, arrow.Field{Name: name, Type: dt, Nullable: true, Metadata: md.Metadata()})
	}
	for _, f := range statement.Columns(c) {
		add(f.Name, f, c, "")
	}
	for _, rf := range c.Features {
		if rf.Kind != features.HasOne || rf.Relation == nil || !visible(rf.Relation.To.Table) {
			continue
		}
		for _, f := range statement.Columns(rf.Relation.To) {
			add(rf.Name+"."+f.Name, f, rf.Relation.To, rf.Name)
		}
	}
	return arrow.NewSchema(fields, nil)
}

// remarks describe a column: the feature's description, then its owner and
// tags (the feature's own, else its class's), and for a has-one path the
// relation it follows.
func remarks(f *features.Feature, c *features.Class, via string) string {
	var parts []string
	if via != "" {
		parts = append(parts, fmt.Sprintf("%s of the %s (%s)", f.Name, via, c.Table))
	}
	if f.Description != "" {
		parts = append(parts, f.Description)
	}
	owner := optionStrings(f.Options["owner"])
	if len(owner) == 0 {
		owner = optionStrings(c.Options["owner"])
	}
	if len(owner) > 0 {
		parts = append(parts, "owner: "+strings.Join(owner, ", "))
	}
	tags := append(optionStrings(c.Options["tags"]), optionStrings(f.Options["tags"])...)
	if len(tags) > 0 {
		parts = append(parts, "tags: "+strings.Join(tags, ", "))
	}
	return strings.Join(parts, "; ")
}

// optionStrings are the strings of a keyword argument: a string, or a list
// of strings (`tags=["a", "b"]`).
func optionStrings(n expr.Node) []string {
	switch n := n.(type) {
	case *expr.Literal:
		if s, ok := n.Value.(string); ok {
			return []string{s}
		}
	case *expr.Call:
		var out []string
		for _, a := range n.Args {
			out = append(out, optionStrings(a)...)
		}
		return out
	}
	return nil
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
	return c == nil || strings.EqualFold(*c, statement.Catalog)
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

// classes are the feature classes the catalogue lists, sorted by table
// name. Every metadata answer goes through here, so what a caller may see
// is decided in one place.
func (s *Server) classes(ctx context.Context) []*features.Class {
	var out []*features.Class
	for _, n := range s.repoOf(ctx).graph.ClassNames() {
		if s.canRead(ctx, n) {
			out = append(out, s.repoOf(ctx).graph.Class(n))
		}
	}
	return out
}

// sqlType is how a wire type is described to SQL clients: one entry both
// for GetXdbcTypeInfo and for the column metadata of GetTables, so that a
// column's TYPE_NAME is always a type the type info lists.
type sqlType struct {
	name          string
	xdbc          pb.XdbcDataType
	subcode       *int32 // datetime types
	precision     *int32 // column size: digits, or characters for datetimes
	scale         *int32
	radix         *int32
	prefix        string // of literals
	caseSensitive bool
	searchable    pb.Searchable
}

func i32(v int32) *int32 { return &v }

// bits is the SqlInfo bitmask of enum values (bit n for value n).
func bits[E ~int32](vals ...E) int32 {
	var m int32
	for _, v := range vals {
		m |= 1 << v
	}
	return m
}

// sqlTypes are the types features have (DESIGN §4), by Arrow type, in
// XDBC data type order (JDBC's getTypeInfo sorts by DATA_TYPE).
var sqlTypes = []struct {
	id arrow.Type
	t  sqlType
}{
	{arrow.INT64, sqlType{name: "BIGINT", xdbc: pb.XdbcDataType_XDBC_BIGINT, precision: i32(19), scale: i32(0), radix: i32(10), searchable: pb.Searchable_SEARCHABLE_BASIC}},
	{arrow.BOOL, sqlType{name: "BOOLEAN", xdbc: pb.XdbcDataType_XDBC_BIT, precision: i32(1), searchable: pb.Searchable_SEARCHABLE_BASIC}},
	{arrow.FLOAT64, sqlType{name: "DOUBLE", xdbc: pb.XdbcDataType_XDBC_DOUBLE, precision: i32(53), radix: i32(2), searchable: pb.Searchable_SEARCHABLE_BASIC}},
	{arrow.STRING, sqlType{name: "VARCHAR", xdbc: pb.XdbcDataType_XDBC_VARCHAR, prefix: "'", caseSensitive: true, searchable: pb.Searchable_SEARCHABLE_FULL}},
	{arrow.DATE32, sqlType{name: "DATE", xdbc: pb.XdbcDataType_XDBC_DATE, subcode: i32(int32(pb.XdbcDatetimeSubcode_XDBC_SUBCODE_DATE)), precision: i32(10), prefix: "DATE '", searchable: pb.Searchable_SEARCHABLE_BASIC}},
	{arrow.TIMESTAMP, sqlType{name: "TIMESTAMP WITH TIME ZONE", xdbc: pb.XdbcDataType_XDBC_TIMESTAMP, subcode: i32(int32(pb.XdbcDatetimeSubcode_XDBC_SUBCODE_TIMESTAMP)), precision: i32(32), scale: i32(6), prefix: "TIMESTAMPTZ '", searchable: pb.Searchable_SEARCHABLE_BASIC}},
}

// sqlTypeOf describes dt. Lists and structs (has-one rows, list features)
// have no XDBC type: they are named, and typed UNKNOWN.
func sqlTypeOf(dt arrow.DataType) sqlType {
	for _, e := range sqlTypes {
		if e.id == dt.ID() {
			return e.t
		}
	}
	switch dt.ID() {
	case arrow.LIST:
		return sqlType{name: "ARRAY"}
	case arrow.STRUCT:
		return sqlType{name: "STRUCT"}
	}
	return sqlType{name: strings.ToUpper(dt.Name())}
}

func (s *Server) GetFlightInfoXdbcTypeInfo(ctx context.Context, cmd flightsql.GetXdbcTypeInfo, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.XdbcTypeInfo), nil
}

// DoGetXdbcTypeInfo lists the SQL types of feature values, or the one asked
// for.
func (s *Server) DoGetXdbcTypeInfo(ctx context.Context, cmd flightsql.GetXdbcTypeInfo) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	return s.one(ctx, schema_ref.XdbcTypeInfo, func(b *array.RecordBuilder) {
		for _, e := range sqlTypes {
			t := e.t
			if want := cmd.GetDataType(); want != nil && *want != int32(t.xdbc) {
				continue
			}
			sqlDataType := int32(t.xdbc)
			if t.subcode != nil {
				// ODBC: the verbose type of every datetime type is DATETIME,
				// told apart by the subcode.
				sqlDataType = int32(pb.XdbcDataType_XDBC_DATETIME)
			}
			suffix := ""
			if t.prefix != "" {
				suffix = "'"
			}
			b.Field(0).(*array.StringBuilder).Append(t.name)
			b.Field(1).(*array.Int32Builder).Append(int32(t.xdbc))
			appendInt32(b.Field(2), t.precision)
			appendString(b.Field(3), t.prefix)
			appendString(b.Field(4), suffix)
			b.Field(5).AppendNull() // no CREATE parameters: the server has no DDL
			b.Field(6).(*array.Int32Builder).Append(int32(pb.Nullable_NULLABILITY_NULLABLE))
			b.Field(7).(*array.BooleanBuilder).Append(t.caseSensitive)
			b.Field(8).(*array.Int32Builder).Append(int32(t.searchable))
			if t.radix != nil {
				b.Field(9).(*array.BooleanBuilder).Append(false)
			} else {
				b.Field(9).AppendNull()
			}
			b.Field(10).(*array.BooleanBuilder).Append(false)
			b.Field(11).(*array.BooleanBuilder).Append(false)
			b.Field(12).(*array.StringBuilder).Append(t.name)
			appendInt32(b.Field(13), t.scale)
			appendInt32(b.Field(14), t.scale)
			b.Field(15).(*array.Int32Builder).Append(sqlDataType)
			appendInt32(b.Field(16), t.subcode)
			appendInt32(b.Field(17), t.radix)
			b.Field(18).AppendNull()
		}
	})
}

func appendInt32(b array.Builder, v *int32) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.Int32Builder).Append(*v)
}

// appendString appends s, or null for "".
func appendString(b array.Builder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(s)
}

// tableRefMatches: catalog and schema of a key request are exact names
// (not patterns); absent matches anything, empty means "none".
func tableRefMatches(catalog, schema *string) bool {
	return catalogMatches(catalog) && (schema == nil || strings.EqualFold(*schema, statement.Schema))
}

func (s *Server) GetFlightInfoPrimaryKeys(ctx context.Context, ref flightsql.TableRef, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.PrimaryKeys), nil
}

// DoGetPrimaryKeys answers the class's primary key. An unknown table has
// none, as in any database: BI tools probe tables this way.
func (s *Server) DoGetPrimaryKeys(ctx context.Context, ref flightsql.TableRef) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	c := s.visibleClass(ctx, ref.Catalog, ref.DBSchema, ref.Table)
	return s.one(ctx, schema_ref.PrimaryKeys, func(b *array.RecordBuilder) {
		if c == nil || c.Primary == nil {
			return
		}
		b.Field(0).(*array.StringBuilder).Append(statement.Catalog)
		b.Field(1).(*array.StringBuilder).Append(statement.Schema)
		b.Field(2).(*array.StringBuilder).Append(c.Table)
		b.Field(3).(*array.StringBuilder).Append(c.Primary.Name)
		b.Field(4).(*array.Int32Builder).Append(1)
		b.Field(5).(*array.StringBuilder).Append(pkName(c))
	})
}

// visibleClass is the listed class of a table reference, or nil.
func (s *Server) visibleClass(ctx context.Context, catalog, schema *string, table string) *features.Class {
	if !tableRefMatches(catalog, schema) {
		return nil
	}
	for _, c := range s.classes(ctx) {
		if c.Table == table {
			return c
		}
	}
	return nil
}

func pkName(c *features.Class) string { return c.Table + "_pkey" }

// foreignKey is a column of one class holding the primary key of another.
type foreignKey struct {
	fk, pk *features.Feature
}

// foreignKeys are the foreign keys among the listed classes: the features
// declared as references (`user_id: User.id`) and the keys of relations
// whose one side is a primary key (a has-one's FromKey → ToKey, a
// has-many's ToKey → FromKey), each once, sorted by primary key table,
// then foreign key table and column.
func (s *Server) foreignKeys(ctx context.Context) []foreignKey {
	classes := s.classes(ctx)
	listed := map[*features.Class]bool{}
	for _, c := range classes {
		listed[c] = true
	}
	seen := map[foreignKey]bool{}
	var out []foreignKey
	add := func(fk, pk *features.Feature) {
		k := foreignKey{fk, pk}
		if fk == nil || pk == nil || fk == pk || pk.Class.Primary != pk || !listed[fk.Class] || !listed[pk.Class] || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, k)
	}
	for _, c := range classes {
		for _, f := range c.Features {
			add(f, f.References)
			if r := f.Relation; r != nil {
				add(r.FromKey, r.ToKey)
				add(r.ToKey, r.FromKey)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.pk.Class.Table != b.pk.Class.Table {
			return a.pk.Class.Table < b.pk.Class.Table
		}
		if a.fk.Class.Table != b.fk.Class.Table {
			return a.fk.Class.Table < b.fk.Class.Table
		}
		return a.fk.Name < b.fk.Name
	})
	return out
}

// keys streams the foreign keys keep selects.
func (s *Server) keys(ctx context.Context, keep func(foreignKey) bool) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	fks := s.foreignKeys(ctx)
	return s.one(ctx, schema_ref.ImportedExportedKeysAndCrossReference, func(b *array.RecordBuilder) {
		for _, k := range fks {
			if !keep(k) {
				continue
			}
			for i, v := range []string{statement.Catalog, statement.Schema, k.pk.Class.Table, k.pk.Name,
				statement.Catalog, statement.Schema, k.fk.Class.Table, k.fk.Name} {
				b.Field(i).(*array.StringBuilder).Append(v)
			}
			b.Field(8).(*array.Int32Builder).Append(1)
			b.Field(9).(*array.StringBuilder).Append(k.fk.Class.Table + "_" + k.fk.Name + "_fkey")
			b.Field(10).(*array.StringBuilder).Append(pkName(k.pk.Class))
			// Rules are moot on a read-only server: NO ACTION.
			b.Field(11).(*array.Uint8Builder).Append(3)
			b.Field(12).(*array.Uint8Builder).Append(3)
		}
	})
}

func (s *Server) GetFlightInfoImportedKeys(ctx context.Context, ref flightsql.TableRef, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.ImportedKeys), nil
}

// DoGetImportedKeys lists the primary keys ref's foreign keys point at.
func (s *Server) DoGetImportedKeys(ctx context.Context, ref flightsql.TableRef) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	c := s.visibleClass(ctx, ref.Catalog, ref.DBSchema, ref.Table)
	return s.keys(ctx, func(k foreignKey) bool { return c != nil && k.fk.Class == c })
}

func (s *Server) GetFlightInfoExportedKeys(ctx context.Context, ref flightsql.TableRef, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.ExportedKeys), nil
}

// DoGetExportedKeys lists the foreign keys pointing at ref's primary key.
func (s *Server) DoGetExportedKeys(ctx context.Context, ref flightsql.TableRef) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	c := s.visibleClass(ctx, ref.Catalog, ref.DBSchema, ref.Table)
	return s.keys(ctx, func(k foreignKey) bool { return c != nil && k.pk.Class == c })
}

func (s *Server) GetFlightInfoCrossReference(ctx context.Context, ref flightsql.CrossTableRef, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.metadataInfo(desc, schema_ref.CrossReference), nil
}

// DoGetCrossReference lists the foreign keys of the FK table pointing at
// the PK table.
func (s *Server) DoGetCrossReference(ctx context.Context, ref flightsql.CrossTableRef) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	pk := s.visibleClass(ctx, ref.PKRef.Catalog, ref.PKRef.DBSchema, ref.PKRef.Table)
	fk := s.visibleClass(ctx, ref.FKRef.Catalog, ref.FKRef.DBSchema, ref.FKRef.Table)
	return s.keys(ctx, func(k foreignKey) bool { return pk != nil && fk != nil && k.pk.Class == pk && k.fk.Class == fk })
}

// sqlInfo is every SqlInfo id of the Flight SQL spec with fletch's answer,
// typed as FlightSql.proto says (arrow-go's BaseServer answers NotFound to
// a request naming any unregistered id, and JDBC asks for all of them).
func (s *Server) sqlInfo() map[flightsql.SqlInfo]any {
	numeric, str, datetime, system := functionLists()
	const unlimited = int64(0) // "no limit or unknown" in JDBC's getMax*
	return map[flightsql.SqlInfo]any{
		// Server.
		flightsql.SqlInfoFlightSqlServerName:                        "fletch",
		flightsql.SqlInfoFlightSqlServerVersion:                     s.opts.Version,
		flightsql.SqlInfoFlightSqlServerArrowVersion:                arrowVersion,
		flightsql.SqlInfoFlightSqlServerReadOnly:                    true,
		flightsql.SqlInfoFlightSqlServerSql:                         true,
		flightsql.SqlInfoFlightSqlServerSubstrait:                   false,
		flightsql.SqlInfoFlightSqlServerSubstraitMinVersion:         "",
		flightsql.SqlInfoFlightSqlServerSubstraitMaxVersion:         "",
		flightsql.SqlInfoFlightSqlServerTransaction:                 int32(flightsql.SqlTransactionNone),
		flightsql.SqlInfoFlightSqlServerCancel:                      false,
		flightsql.SqlInfoFlightSqlServerBulkIngestion:               false,
		flightsql.SqlInfoFlightSqlServerIngestTransactionsSupported: false,
		flightsql.SqlInfoFlightSqlServerStatementTimeout:            int32(s.opts.PreparedTTL / time.Millisecond),
		flightsql.SqlInfoFlightSqlServerTransactionTimeout:          int32(0),

		// SQL dialect: what the SQL front end reads (pg_query: PostgreSQL's grammar
		// and identifier rules).
		flightsql.SqlInfoDDLCatalog:                             false,
		flightsql.SqlInfoDDLSchema:                              false,
		flightsql.SqlInfoDDLTable:                               false,
		flightsql.SqlInfoIdentifierCase:                         int32(flightsql.SqlCaseSensitivityLowerCase),
		flightsql.SqlInfoIdentifierQuoteChar:                    `"`,
		flightsql.SqlInfoQuotedIdentifierCase:                   int32(flightsql.SqlCaseSensitivityCaseInsensitive),
		flightsql.SqlInfoAllTablesAreASelectable:                true,
		flightsql.SqlInfoNullOrdering:                           int32(flightsql.SqlNullOrderingSortAtEnd),
		flightsql.SqlInfoKeywords:                               []string{"__as_of__"},
		flightsql.SqlInfoNumericFunctions:                       numeric,
		flightsql.SqlInfoStringFunctions:                        str,
		flightsql.SqlInfoSystemFunctions:                        system,
		flightsql.SqlInfoDateTimeFunctions:                      datetime,
		flightsql.SqlInfoSearchStringEscape:                     `\`,
		flightsql.SqlInfoExtraNameChars:                         "",
		flightsql.SqlInfoSupportsColumnAliasing:                 true,
		flightsql.SqlInfoNullPlusNullIsNull:                     true,
		flightsql.SqlInfoSupportsConvert:                        map[int32][]int32{},
		flightsql.SqlInfoSupportsTableCorrelationNames:          true,
		flightsql.SqlInfoSupportsDifferentTableCorrelationNames: true,
		flightsql.SqlInfoSupportsExpressionsInOrderBy:           true,
		flightsql.SqlInfoSupportsOrderByUnrelated:               true,
		flightsql.SqlInfoSupportedGroupBy:                       bits(pb.SqlSupportedGroupBy_SQL_GROUP_BY_UNRELATED, pb.SqlSupportedGroupBy_SQL_GROUP_BY_BEYOND_SELECT),
		flightsql.SqlInfoSupportsLikeEscapeClause:               true,
		flightsql.SqlInfoSupportsNonNullableColumns:             false,
		flightsql.SqlInfoSupportedGrammar:                       bits(pb.SupportedSqlGrammar_SQL_MINIMUM_GRAMMAR, pb.SupportedSqlGrammar_SQL_CORE_GRAMMAR),
		flightsql.SqlInfoANSI92SupportedLevel:                   bits(pb.SupportedAnsi92SqlGrammarLevel_ANSI92_ENTRY_SQL),
		flightsql.SqlInfoSupportsIntegrityEnhancementFacility:   false,
		flightsql.SqlInfoOuterJoinsSupportLevel:                 int32(pb.SqlOuterJoinsSupportLevel_SQL_FULL_OUTER_JOINS),
		flightsql.SqlInfoSchemaTerm:                             "schema",
		flightsql.SqlInfoProcedureTerm:                          "procedure",
		flightsql.SqlInfoCatalogTerm:                            "catalog",
		flightsql.SqlInfoCatalogAtStart:                         true,
		flightsql.SqlInfoSchemasSupportedActions:                int32(0),
		flightsql.SqlInfoCatalogsSupportedActions:               int32(0),
		flightsql.SqlInfoSupportedPositionedCommands:            int32(0),
		flightsql.SqlInfoSelectForUpdateSupported:               false,
		flightsql.SqlInfoStoredProceduresSupported:              false,
		flightsql.SqlInfoSupportedSubqueries:                    bits(pb.SqlSupportedSubqueries_SQL_SUBQUERIES_IN_COMPARISONS, pb.SqlSupportedSubqueries_SQL_SUBQUERIES_IN_EXISTS, pb.SqlSupportedSubqueries_SQL_SUBQUERIES_IN_INS, pb.SqlSupportedSubqueries_SQL_SUBQUERIES_IN_QUANTIFIEDS),
		flightsql.SqlInfoCorrelatedSubqueriesSupported:          true,
		flightsql.SqlInfoSupportedUnions:                        bits(pb.SqlSupportedUnions_SQL_UNION, pb.SqlSupportedUnions_SQL_UNION_ALL),

		// Limits.
		flightsql.SqlInfoMaxBinaryLiteralLen:     unlimited,
		flightsql.SqlInfoMaxCharLiteralLen:       unlimited,
		flightsql.SqlInfoMaxColumnNameLen:        unlimited,
		flightsql.SqlInfoMaxColumnsInGroupBy:     unlimited,
		flightsql.SqlInfoMaxColumnsInIndex:       unlimited,
		flightsql.SqlInfoMaxColumnsInOrderBy:     unlimited,
		flightsql.SqlInfoMaxColumnsInSelect:      unlimited,
		flightsql.SqlInfoMaxColumnsInTable:       unlimited,
		flightsql.SqlInfoMaxConnections:          unlimited,
		flightsql.SqlInfoMaxCursorNameLen:        unlimited,
		flightsql.SqlInfoMaxIndexLen:             unlimited,
		flightsql.SqlInfoDBSchemaNameLen:         unlimited,
		flightsql.SqlInfoMaxProcedureNameLen:     unlimited,
		flightsql.SqlInfoMaxCatalogNameLen:       unlimited,
		flightsql.SqlInfoMaxRowSize:              unlimited,
		flightsql.SqlInfoMaxRowSizeIncludesBlobs: false,
		flightsql.SqlInfoMaxStatementLen:         unlimited,
		flightsql.SqlInfoMaxStatements:           int64(s.opts.MaxPrepared),
		flightsql.SqlInfoMaxTableNameLen:         unlimited,
		flightsql.SqlInfoMaxTablesInSelect:       unlimited,
		flightsql.SqlInfoMaxUsernameLen:          unlimited,

		// Transactions and result sets: none, and forward-only read-only.
		// The spec says int32; the JDBC driver (arrow-java 18) casts it to
		// Long and fails getDefaultTransactionIsolation on anything else.
		flightsql.SqlInfoDefaultTransactionIsolation:                         int64(pb.SqlTransactionIsolationLevel_SQL_TRANSACTION_NONE),
		flightsql.SqlInfoTransactionsSupported:                               false,
		flightsql.SqlInfoSupportedTransactionsIsolationlevels:                int32(0),
		flightsql.SqlInfoDataDefinitionCausesTransactionCommit:               false,
		flightsql.SqlInfoDataDefinitionsInTransactionsIgnored:                false,
		flightsql.SqlInfoSupportedResultSetTypes:                             int32(1 << pb.SqlSupportedResultSetType_SQL_RESULT_SET_TYPE_FORWARD_ONLY),
		flightsql.SqlInfoSupportedConcurrenciesForResultSetUnspecified:       int32(0),
		flightsql.SqlInfoSupportedConcurrenciesForResultSetForwardOnly:       int32(1 << pb.SqlSupportedResultSetConcurrency_SQL_RESULT_SET_CONCURRENCY_READ_ONLY),
		flightsql.SqlInfoSupportedConcurrenciesForResultSetScrollSensitive:   int32(0),
		flightsql.SqlInfoSupportedConcurrenciesForResultSetScrollInsensitive: int32(0),
		flightsql.SqlInfoBatchUpdatesSupported:                               false,
		flightsql.SqlInfoSavePointsSupported:                                 false,
		flightsql.SqlInfoNamedParametersSupported:                            false,
		flightsql.SqlInfoLocatorsUpdateCopy:                                  false,
		flightsql.SqlInfoStoredFunctionsUsingCallSyntaxSupported:             false,
	}
}

// functionLists sorts the function library for SqlInfo by what the
// functions work on: datetimes, else strings, else numbers; the rest
// (coalesce, is_null, ...) are "system" functions.
func functionLists() (numeric, str, datetime, system []string) {
	reg := functions.Default()
	for _, name := range reg.Names() {
		sigs := strings.Join(reg.Lookup(name).Signatures(), " ")
		switch {
		case strings.Contains(sigs, "date"):
			datetime = append(datetime, name)
		case strings.Contains(sigs, "str"):
			str = append(str, name)
		case strings.Contains(sigs, "int") || strings.Contains(sigs, "float"):
			numeric = append(numeric, name)
		default:
			system = append(system, name)
		}
	}
	return numeric, str, datetime, system
}
