package deps
import (
	_ "github.com/apache/arrow-go/v18/arrow"
	_ "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	_ "github.com/apache/arrow-go/v18/arrow/compute"
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/tree-sitter/go-tree-sitter"
	_ "github.com/tree-sitter/tree-sitter-python/bindings/go"
	_ "github.com/pganalyze/pg_query_go/v6"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)
