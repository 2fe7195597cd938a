package integration

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-adbc/go/adbc"
	adbcflightsql "github.com/apache/arrow-adbc/go/adbc/driver/flightsql"
	"github.com/apache/arrow-adbc/go/adbc/validation"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
)

// adbcConn opens an ADBC Flight SQL connection (the Go driver the Python
// package wraps) to the demo; it is closed when t ends.
func adbcConn(t *testing.T, mem memory.Allocator) adbc.Connection {
	t.Helper()
	db, err := adbcflightsql.NewDriver(mem).NewDatabase(map[string]string{adbc.OptionKeyURI: "grpc+tcp://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	cnxn, err := db.Open(context.Background())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cnxn.Close()
		db.Close()
	})
	return cnxn
}

// adbcRows drains rdr into rows of Go values and releases it.
func adbcRows(t *testing.T, rdr array.RecordReader) (*arrow.Schema, [][]any) {
	t.Helper()
	defer rdr.Release()
	var rows [][]any
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]any, rec.NumCols())
			for j, col := range rec.Columns() {
				row[j] = operators.GoValue(col, i)
			}
			rows = append(rows, row)
		}
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return rdr.Schema(), rows
}

func TestADBC(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cnxn := adbcConn(t, mem)
	ctx := context.Background()

	t.Run("GetInfo", func(t *testing.T) {
		rdr, err := cnxn.GetInfo(ctx, []adbc.InfoCode{adbc.InfoVendorName, adbc.InfoVendorSql, adbc.InfoVendorArrowVersion})
		if err != nil {
			t.Fatal(err)
		}
		got := map[adbc.InfoCode]string{}
		for rdr.Next() {
			rec := rdr.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				got[adbc.InfoCode(rec.Column(0).(*array.Uint32).Value(i))] = fmt.Sprint(infoValue(rec, i))
			}
		}
		rdr.Release()
		want := map[adbc.InfoCode]string{adbc.InfoVendorName: "fletch", adbc.InfoVendorSql: "true", adbc.InfoVendorArrowVersion: "1.5.0"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetInfo = %v, want %v", got, want)
		}
	})

	t.Run("GetObjects", func(t *testing.T) {
		rdr, err := cnxn.GetObjects(ctx, adbc.ObjectDepthAll, nil, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		schema, rows := adbcRows(t, rdr)
		if !schema.Equal(adbc.GetObjectsSchema) {
			t.Errorf("schema %s, want %s", schema, adbc.GetObjectsSchema)
		}
		// catalog → schemas → tables → columns, as nested Go values.
		var tables []string
		userColumns := 0
		for _, r := range rows {
			if r[0] != "fletch" {
				t.Errorf("catalog %v", r[0])
			}
			for _, s := range r[1].([]any) {
				s := s.(map[string]any)
				if s["db_schema_name"] != "features" {
					t.Errorf("schema %v", s["db_schema_name"])
				}
				for _, tb := range s["db_schema_tables"].([]any) {
					tb := tb.(map[string]any)
					tables = append(tables, tb["table_name"].(string))
					if tb["table_name"] == "user" {
						userColumns = len(tb["table_columns"].([]any))
					}
				}
			}
		}
		if got := strings.Join(tables, ","); got != "item,item_price,review,seller,user,user_item" {
			t.Errorf("tables %s", got)
		}
		if userColumns < 10 {
			t.Errorf("user has %d columns in GetObjects", userColumns)
		}
	})

	t.Run("GetTableSchema", func(t *testing.T) {
		schema, err := cnxn.GetTableSchema(ctx, nil, nil, "user")
		if err != nil {
			t.Fatal(err)
		}
		// As examples/marketplace/marketplace.py declares User.
		for name, typ := range map[string]string{"id": "utf8", "created_at": "timestamp[us, tz=UTC]", "birthday": "date32",
			"review_count__604800__": "int64", "average_rating_given": "float64"} {
			idx := schema.FieldIndices(name)
			if len(idx) != 1 || schema.Field(idx[0]).Type.String() != typ {
				t.Errorf("user.%s: want %s in %s", name, typ, schema)
			}
		}
		if _, err := cnxn.GetTableSchema(ctx, nil, nil, "usr"); err == nil {
			t.Error("GetTableSchema of an unknown table succeeded")
		}
	})

	t.Run("statement", func(t *testing.T) {
		stmt, err := cnxn.NewStatement()
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		keys := []string{"50", "1", "nobody", "1000", "50"}
		if err := stmt.SetSqlQuery(`SELECT ` + userSelect + ` FROM user WHERE id IN ('50', '1', 'nobody', '1000', '50') AND __as_of__ = '` + anchor.Format(time.RFC3339) + `'`); err != nil {
			t.Fatal(err)
		}
		rdr, _, err := stmt.ExecuteQuery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, got := adbcRows(t, rdr)
		checkNames(t, schema, userColumns)
		var rows []spineRow
		for _, k := range keys {
			rows = append(rows, spineRow{k, anchor})
		}
		compareRows(t, userColumns, got, userReference(t, rows))
	})

	t.Run("prepared, 10,000 parameter rows", func(t *testing.T) {
		stmt, err := cnxn.NewStatement()
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		if err := stmt.SetSqlQuery(`SELECT ` + userSelect + ` FROM user WHERE id = ? AND __as_of__ = ?`); err != nil {
			t.Fatal(err)
		}
		if err := stmt.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		ps, err := stmt.GetParameterSchema()
		if err != nil {
			t.Fatal(err)
		}
		// Ten passes over the shuffled users, each a day earlier.
		var rows []spineRow
		ids, times := []any{}, []any{}
		for pass := range 10 {
			for _, k := range userKeys() {
				at := anchor.Add(-time.Duration(pass) * day)
				rows = append(rows, spineRow{k, at})
				ids, times = append(ids, k), append(times, at)
			}
		}
		p := params(t, mem, ps, map[string][]any{"id": ids, "__as_of__": times})
		err = stmt.Bind(ctx, p)
		p.Release()
		if err != nil {
			t.Fatal(err)
		}
		// The handle serves more than one execution.
		for range 2 {
			rdr, _, err := stmt.ExecuteQuery(ctx)
			if err != nil {
				t.Fatal(err)
			}
			schema, got := adbcRows(t, rdr)
			checkNames(t, schema, userColumns)
			compareRows(t, userColumns, got, userReference(t, rows))
		}
	})
}

// TestADBCValidation runs the cases of arrow-adbc's validation suite that
// apply to a read-only server: those without DDL, ingestion, transactions
// or SQL beyond fletch's (`SELECT 1` has no feature class).
func TestADBCValidation(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	q := &fletchQuirks{mem: mem, vendorVersion: serverVersion(t, mem)}
	runCases(t, &validation.DatabaseTests{Quirks: q}, "TestNewDatabase")
	runCases(t, &validation.ConnectionTests{Quirks: q}, "TestGetSetOptions", "TestNewConn", "TestCloseConnTwice",
		"TestConcurrent", "TestAutocommitDefault", "TestAutocommitToggle", "TestMetadataCurrentCatalog",
		"TestMetadataCurrentDbSchema", "TestMetadataGetInfo", "TestMetadataGetStatistics", "TestMetadataGetTableTypes")
	runCases(t, &validation.StatementTests{Quirks: q}, "TestNewStatement")
}

// serverVersion asks the server its version with arrow-go's client, for
// the ADBC suite to compare with what ADBC reports.
func serverVersion(t *testing.T, mem memory.Allocator) string {
	t.Helper()
	ctx := context.Background()
	cl := client(t, mem)
	info, err := cl.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerVersion})
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	if !rdr.Next() || rdr.RecordBatch().NumRows() != 1 {
		t.Fatalf("no server version: %v", rdr.Err())
	}
	return fmt.Sprint(infoValue(rdr.RecordBatch(), 0))
}

// suiteCase is what runCases needs of a testify suite.
type suiteCase interface {
	SetT(*testing.T)
	SetupTest()
	TearDownTest()
}

// runCases runs the named methods of a testify suite as subtests, each
// between SetupTest and TearDownTest, as suite.Run would for all of them.
func runCases(t *testing.T, s suiteCase, names ...string) {
	for _, name := range names {
		m := reflect.ValueOf(s).MethodByName(name)
		if !m.IsValid() {
			t.Fatalf("the validation suite has no case %s", name)
		}
		t.Run(name, func(t *testing.T) {
			s.SetT(t)
			s.SetupTest()
			defer s.TearDownTest()
			m.Call(nil)
		})
	}
}

// fletchQuirks describe fletch to the validation suite: read-only, no
// transactions, no DDL, the fletch catalog and features schema.
type fletchQuirks struct {
	mem           memory.Allocator
	vendorVersion string
}

func (q *fletchQuirks) SetupDriver(*testing.T) adbc.Driver     { return adbcflightsql.NewDriver(q.mem) }
func (q *fletchQuirks) TearDownDriver(*testing.T, adbc.Driver) {}
func (q *fletchQuirks) DatabaseOptions() map[string]string {
	return map[string]string{adbc.OptionKeyURI: "grpc+tcp://" + addr}
}
func (q *fletchQuirks) BindParameter(int) string                    { return "?" }
func (q *fletchQuirks) SupportsBulkIngest(string) bool              { return false }
func (q *fletchQuirks) SupportsConcurrentStatements() bool          { return true }
func (q *fletchQuirks) SupportsCurrentCatalogSchema() bool          { return true }
func (q *fletchQuirks) SupportsGetSetOptions() bool                 { return true }
func (q *fletchQuirks) SupportsExecuteSchema() bool                 { return true }
func (q *fletchQuirks) SupportsPartitionedData() bool               { return true }
func (q *fletchQuirks) SupportsStatistics() bool                    { return false }
func (q *fletchQuirks) SupportsTransactions() bool                  { return false }
func (q *fletchQuirks) SupportsGetParameterSchema() bool            { return true }
func (q *fletchQuirks) SupportsDynamicParameterBinding() bool       { return true }
func (q *fletchQuirks) SupportsErrorIngestIncompatibleSchema() bool { return false }
func (q *fletchQuirks) Catalog() string                             { return "fletch" }
func (q *fletchQuirks) DBSchema() string                            { return "features" }
func (q *fletchQuirks) Alloc() memory.Allocator                     { return q.mem }

// GetMetadata: the vendor codes are the server's answers; the driver codes
// describe the driver, whatever server it talks to, and are taken as the
// driver reports them.
func (q *fletchQuirks) GetMetadata(code adbc.InfoCode) any {
	switch code {
	case adbc.InfoVendorName:
		return "fletch"
	case adbc.InfoVendorVersion:
		return q.vendorVersion
	case adbc.InfoVendorArrowVersion:
		return "1.5.0"
	case adbc.InfoDriverName:
		return "ADBC Flight SQL Driver - Go"
	case adbc.InfoDriverADBCVersion:
		return adbc.AdbcVersion1_1_0
	}
	return q.driverInfo(code)
}

// driverInfo is what the driver says of itself for code (its version and
// its Arrow library's, which depend on how the test binary was built).
func (q *fletchQuirks) driverInfo(code adbc.InfoCode) any {
	db, err := adbcflightsql.NewDriver(q.mem).NewDatabase(q.DatabaseOptions())
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	cnxn, err := db.Open(context.Background())
	if err != nil {
		return err.Error()
	}
	defer cnxn.Close()
	rdr, err := cnxn.GetInfo(context.Background(), []adbc.InfoCode{code})
	if err != nil {
		return err.Error()
	}
	defer rdr.Release()
	for rdr.Next() {
		if rec := rdr.RecordBatch(); rec.NumRows() > 0 {
			return infoValue(rec, 0)
		}
	}
	return nil
}

// infoValue is the value of row i of a GetInfo result (a dense union).
func infoValue(rec arrow.RecordBatch, i int) any {
	u := rec.Column(1).(*array.DenseUnion)
	return operators.GoValue(u.Field(u.ChildID(i)), int(u.ValueOffset(i)))
}

func (q *fletchQuirks) CreateSampleTable(string, arrow.RecordBatch) error {
	return fmt.Errorf("fletch is read-only: no tables are created")
}
func (q *fletchQuirks) SampleTableSchemaMetadata(string, arrow.DataType) arrow.Metadata {
	return arrow.Metadata{}
}
func (q *fletchQuirks) DropTable(adbc.Connection, string) error {
	return fmt.Errorf("fletch is read-only: no tables are dropped")
}
