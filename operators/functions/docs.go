package functions

import (
	"strings"

	"github.com/fletch-engine/fletch/operators/aggregate"
)

const docsHeader = `# Functions

The function library of fletch expressions: the operators of ` + "`_`" + ` expressions and SQL
(` + "`+`" + ` is ` + "`add`" + `, ` + "`<`" + ` is ` + "`less`" + `, ...) and the ` + "`F.*`" + ` functions. Generated from the registry in
` + "`operators/functions`" + ` (` + "`FLETCH_UPDATE_DOCS=1 go test -tags duckdb_arrow ./operators/functions -run TestDocs`" + `);
a test fails when this page and the registry disagree.

Conventions (decided here, tested against DuckDB or CPython):

- Types: ` + "`int`" + ` int64, ` + "`float`" + ` float64, ` + "`str`" + ` utf8, ` + "`datetime`" + ` timestamp[us, UTC], ` + "`date`" + ` date32,
  ` + "`T`" + ` a type shared by the arguments so marked. Implicit casts: int → float, date → datetime
  (midnight UTC), narrower ints / floats / string encodings to the canonical ones; a ` + "`None`" + `
  literal fits any parameter.
- Nulls propagate (SQL) unless the Nulls column says otherwise.
- ` + "`divide`" + ` and ` + "`safe_divide`" + ` give null on a zero divisor (DuckDB's classic behaviour, not IEEE
  ±inf, not Python's exception); ` + "`floor_divide`" + ` and ` + "`mod`" + ` follow Python's signs and give null on zero.
- Integer ` + "`add`" + `/` + "`subtract`" + `/` + "`multiply`" + ` overflow is an error, never a wrapped value.
- ` + "`round`" + ` rounds halves to even, as Python's ` + "`round`" + `; it always returns a float.
- Comparisons of floats are IEEE: NaN is unequal to everything, itself included.
- Positions are 0-based: ` + "`substr`" + `, ` + "`element_at`" + `, ` + "`split_part`" + `, ` + "`strpos`" + ` (-1 when absent); negative
  positions count from the end, as Python indexing.
- String lengths and positions count characters (code points), not bytes.
- ` + "`jaccard_similarity`" + ` is over the sets of characters, in 0..1 (DuckDB's ` + "`jaccard`" + `).
- ` + "`day_of_week`" + ` is ISO: Monday 1 … Sunday 7. All datetime parts are in UTC.
- ` + "`datetime - datetime`" + ` is the difference in seconds (float); ` + "`date_diff(unit, start, end)`" + ` counts unit
  boundaries crossed (as DuckDB).

| function | signatures | nulls | description |
| --- | --- | --- | --- |
`

// Markdown renders the registry as docs/FUNCTIONS.md.
func (r *Registry) Markdown() string {
	var sb strings.Builder
	sb.WriteString(docsHeader)
	for _, name := range r.Names() {
		f := r.funcs[name]
		sigs := f.Signatures()
		for i, s := range sigs {
			sigs[i] = "`" + s + "`"
		}
		sb.WriteString("| `" + name + "` | " + strings.Join(sigs, "<br>") + " | " + f.Nulls + " | " +
			strings.ReplaceAll(f.Doc, "|", `\|`) + " |\n")
	}
	sb.WriteString(evaluationDoc)
	sb.WriteString(aggregationsDoc)
	sb.WriteString("\nAggregation names: `" + strings.Join(aggregate.Functions, "`, `") + "`.\n")
	return sb.String()
}

const evaluationDoc = `
## Evaluation: call by call, or fused

Over a batch of 256 rows or more, the planner evaluates each largest sub-tree of two calls or more
of the functions below, over ` + "`int`" + `, ` + "`float`" + ` and ` + "`bool`" + `, as one fused program
(` + "`functions.Compile`" + `, compiled on the plan's first such batch): the whole sub-tree per chunk of 512
rows, its intermediate values in chunk-sized vectors reused from chunk to chunk, only its result
written as an array (the root's last computing call writes straight into it). An ` + "`if_then_else`" + ` of
ints or floats whose branch the program computes and nothing reads afterwards is computed in place:
the other branch's rows are patched into that branch's vector (or into the output, for the root's).
Two such ` + "`if_then_else`" + ` one over the other (a Python ` + "`if`" + ` chain reassigning a variable) patch in one
pass, and one over a float ` + "`+`" + `, ` + "`-`" + ` or ` + "`*`" + ` computes the operation and its patch in one pass, in
the rows it keeps only (float arithmetic never fails, so no answer changes).
Over the Go allocator, a program's output buffers are recycled from its released earlier outputs.
What the program does not compute (strings, datetimes, lists, aggregations,
has-one paths, other functions) is computed call by call and enters it as an input column. Fused:
` + "`add`" + `, ` + "`subtract`" + `, ` + "`multiply`" + `, ` + "`divide`" + `, ` + "`floor_divide`" + `, ` + "`mod`" + `, ` + "`power`" + `/` + "`pow`" + `, ` + "`negate`" + `, ` + "`abs`" + `, ` + "`floor`" + `,
` + "`ceil`" + `, ` + "`trunc`" + `, ` + "`round`" + ` (one argument), ` + "`sqrt`" + `, ` + "`fill_nan`" + `, ` + "`is_nan`" + `, ` + "`is_inf`" + `, ` + "`is_finite`" + `, the six
comparisons, ` + "`and`" + `, ` + "`or`" + `, ` + "`not`" + `, ` + "`is_null`" + `, ` + "`is_not_null`" + `, ` + "`if_then_else`" + `, ` + "`coalesce`" + `,
` + "`mask_null`" + `, ` + "`to_float`" + `, ` + "`to_int`" + `, ` + "`try_add`" + `, ` + "`try_subtract`" + `, ` + "`try_multiply`" + ` and the int → float
conversion. The answers are the kernels', bit for bit, nulls included (` + "`TestFusedMatchesKernels`" + `:
random trees over random columns with nulls, NaN, ±0.0, ±inf and 64-bit extremes): ` + "`if_then_else`" + `
and ` + "`coalesce`" + ` compute every argument for every row in both; where a kernel fails (an int overflow,
an int beyond 2**53 converted to a float) the sub-tree is evaluated call by call, which reports the
error as always. Smaller batches (the online path's one row) are evaluated call by call. Cost:
docs/BENCHMARKS.md, "Compiled Python resolvers".

Built with ` + "`GOEXPERIMENT=simd`" + ` (as ` + "`./fletch`" + `, ` + "`scripts/test`" + ` and the benchmark scripts build
it), the float loops — ` + "`+ - *`" + `, the comparisons into bitmaps — run four rows an instruction on the
CPU's AVX registers, and ` + "`if_then_else`" + `'s patches eight rows a masked merge with AVX-512, through
the Go toolchain's own ` + "`simd/archsimd`" + ` (` + "`operators/functions/wide_simd.go`" + `). Without the
experiment, or on a CPU without AVX, the same scalar loops as before run (` + "`wide_scalar.go`" + `); the
answers are the same bits either way (` + "`TestFloatLoops`" + `, ` + "`TestPatchRows`" + `: each loop against one Go
operation per row; ` + "`scripts/test`" + ` runs the package's tests in both builds). Measured in
docs/BENCHMARKS.md §12.3.
`

const aggregationsDoc = `
## Aggregations over has-many relations

Implemented in ` + "`operators/aggregate`" + ` (tested against DuckDB ` + "`GROUP BY`" + `). Nulls are skipped, except by
` + "`count`" + `, which counts rows. Over no rows: ` + "`sum`" + ` 0, ` + "`count`" + ` 0, ` + "`approx_count_distinct`" + ` 0, ` + "`any`" + ` false,
` + "`all`" + ` true, ` + "`min`" + `/` + "`max`" + `/` + "`mean`" + ` null; ` + "`std`" + `/` + "`var`" + ` are sample statistics (n−1), null below 2 values.
` + "`sum`" + ` keeps int or float (int overflow is an error); ` + "`mean`" + `/` + "`std`" + `/` + "`var`" + ` are float; ` + "`min`" + `/` + "`max`" + ` keep
the type (int, float, str, datetime, date, bool). ` + "`max_by`" + `/` + "`min_by`" + ` take the value at the greatest /
least sort key among rows whose value and key are not null; ties go to the later row in input
order; NaN sorts above every number. ` + "`approx_count_distinct`" + ` is a HyperLogLog with 4096 registers
(standard error 1.04/√4096 ≈ 1.6%) and LogLog-Beta's unbiased estimate, exact up to 512 distinct
values per group; its sketches merge and serialize (` + "`aggregate.Sketch`" + `; errors measured in
docs/TILES.md).
`
