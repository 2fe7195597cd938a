package functions

import "testing"

func TestMath(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "abs", args: []string{"i"}, duck: "abs(i)"},
		{fn: "abs", args: []string{"x"}, duck: "abs(x)"},
		{fn: "sign", args: []string{"i"}, duck: "sign(i)"},
		{fn: "sign", args: []string{"x"}, duck: "sign(x)"},
		{fn: "sqrt", args: []string{"k:2.0"}, duck: "sqrt(2.0)"},
		{fn: "sqrt", args: []string{"i"}, py: "lambda a: math.sqrt(a) if a >= 0 else float('nan')"},
		{fn: "cbrt", args: []string{"x"}, duck: "cbrt(x)"},
		{fn: "exp", args: []string{"x"}, duck: "exp(x)"},
		{fn: "ln", args: []string{"y"}, py: "lambda a: math.log(a) if a > 0 else (float('-inf') if a == 0 else float('nan'))"},
		{fn: "log", args: []string{"x"}, py: "lambda a: math.log(a) if a > 0 else (float('-inf') if a == 0 else float('nan'))"},
		{fn: "log", args: []string{"k:8.0", "k:2.0"}, py: "lambda a, b: math.log(a, b)"},
		{fn: "log2", args: []string{"k:8.0"}, duck: "log2(8)"},
		{fn: "log10", args: []string{"k:1000"}, duck: "log10(1000)"},
		{fn: "sin", args: []string{"x"}, duck: "sin(x)"},
		{fn: "cos", args: []string{"x"}, duck: "cos(x)"},
		{fn: "tan", args: []string{"x"}, duck: "tan(x)"},
		{fn: "asin", args: []string{"k:0.5"}, duck: "asin(0.5)"},
		{fn: "acos", args: []string{"k:0.5"}, duck: "acos(0.5)"},
		{fn: "atan", args: []string{"x"}, duck: "atan(x)"},
		{fn: "sinh", args: []string{"x"}, py: "lambda a: math.sinh(a)"},
		{fn: "cosh", args: []string{"x"}, py: "lambda a: math.cosh(a)"},
		{fn: "tanh", args: []string{"x"}, py: "lambda a: math.tanh(a)"},
		{fn: "atan2", args: []string{"x", "y"}, duck: "atan2(x, y)"},
		{fn: "degrees", args: []string{"x"}, duck: "degrees(x)"},
		{fn: "radians", args: []string{"x"}, duck: "radians(x)"},
		{fn: "sigmoid", args: []string{"x"}, duck: "1 / (1 + exp(-x))"},
		{fn: "floor", args: []string{"x"}, duck: "floor(x)"},
		{fn: "floor", args: []string{"i"}, duck: "floor(i)"},
		{fn: "ceil", args: []string{"x"}, duck: "ceil(x)"},
		{fn: "trunc", args: []string{"x"}, duck: "trunc(x)"},
		{fn: "round", args: []string{"x"}, py: "lambda a: float(round(a))"},
		{fn: "round", args: []string{"x", "k:1"}, py: "lambda a, d: round(a, d)"},
		{fn: "power", args: []string{"x", "y"}, py: "lambda a, b: float('inf') if a == 0 and b < 0 else a ** b"},
		{fn: "pow", args: []string{"i", "k:2"}, duck: "pow(i, 2)"},
		{fn: "safe_divide", args: []string{"x", "y"}, duck: "CASE WHEN y <> 0 THEN x / y END"},
		{fn: "clamp", args: []string{"x", "k:-1.0", "k:2.0"}, py: "lambda x, lo, hi: max(lo, min(hi, x))"},
		{fn: "clamp", args: []string{"i", "j", "k:5"}, py: "lambda x, lo, hi: max(lo, min(hi, x))"},
		{fn: "greatest", args: []string{"x", "y", "i"}, duck: "greatest(x, y, i)"},
		{fn: "least", args: []string{"x", "y"}, duck: "least(x, y)"},
		{fn: "greatest", args: []string{"s", "t"}, duck: "greatest(s, t)"},
		{fn: "least", args: []string{"ts", "ts2"}, duck: "least(ts, ts2)"},
		{fn: "is_nan", args: []string{"x"}, duck: "isnan(x)"},
		{fn: "is_inf", args: []string{"x"}, duck: "isinf(x)"},
		{fn: "is_finite", args: []string{"x"}, duck: "isfinite(x)"},
		{fn: "mod", args: []string{"i", "k:3"}, py: "lambda a, b: a % b"},
	})
}

func TestStrings(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "lower", args: []string{"s"}, duck: "lower(s)"},
		{fn: "upper", args: []string{"s"}, duck: "upper(s)"},
		{fn: "length", args: []string{"s"}, duck: "length(s)"},
		{fn: "reverse", args: []string{"s"}, duck: "reverse(s)"},
		{fn: "trim", args: []string{"s"}, duck: "trim(s)"},
		{fn: "ltrim", args: []string{"s"}, duck: "ltrim(s)"},
		{fn: "rtrim", args: []string{"s"}, duck: "rtrim(s)"},
		{fn: "substr", args: []string{"s", "k:2"}, duck: "substring(s, 3)"},
		{fn: "substr", args: []string{"s", "k:1", "k:3"}, duck: "substring(s, 2, 3)"},
		{fn: "substr", args: []string{"s", "k:-3", "k:2"}, py: "lambda s, a, n: s[a:a+n] if a+n != 0 else s[a:]"},
		{fn: "replace", args: []string{"s", "k:'l'", "k:'L'"}, duck: "replace(s, 'l', 'L')"},
		{fn: "starts_with", args: []string{"s", "k:'he'"}, duck: "starts_with(s, 'he')"},
		{fn: "ends_with", args: []string{"s", "k:'o'"}, duck: "ends_with(s, 'o')"},
		{fn: "contains", args: []string{"s", "t"}, duck: "contains(s, t)"},
		{fn: "strpos", args: []string{"s", "k:'o'"}, py: "lambda s, sub: s.find(sub)"},
		{fn: "split", args: []string{"s", "k:','"}, duck: "string_split(s, ',')"},
		{fn: "split_part", args: []string{"s", "k:','", "k:1"}, py: "lambda s, d, k: s.split(d)[k] if k < len(s.split(d)) else None"},
		{fn: "split_part", args: []string{"s", "k:' '", "k:-1"}, py: "lambda s, d, k: s.split(d)[k]"},
		{fn: "lpad", args: []string{"s", "k:7", "k:'*-'"}, duck: "lpad(s, 7, '*-')"},
		{fn: "rpad", args: []string{"s", "k:7", "k:'.'"}, duck: "rpad(s, 7, '.')"},
		{fn: "repeat", args: []string{"t", "k:2"}, duck: "repeat(t, 2)"},
		{fn: "concat", args: []string{"s", "k:'-'", "t"}, duck: "s || '-' || t"},
		{fn: "concat_ws", args: []string{"k:'/'", "s", "t"}, duck: "concat_ws('/', s, t)"},
		{fn: "initcap", args: []string{"s"}, py: "lambda s: ' '.join(w[:1].upper() + w[1:].lower() for w in s.split(' '))"},
		{fn: "regexp_like", args: []string{"s", "k:'l+o'"}, duck: "regexp_matches(s, 'l+o')"},
		{fn: "regexp_extract", args: []string{"s", "k:'([a-z])([a-z]+)'"}, duck: "regexp_extract(s, '([a-z])([a-z]+)')"},
		{fn: "regexp_extract", args: []string{"s", "k:'([a-z])([a-z]+)'", "k:2"}, duck: "regexp_extract(s, '([a-z])([a-z]+)', 2)"},
		{fn: "regexp_replace", args: []string{"s", "k:'[aeiou]'", "k:'_'"}, duck: "regexp_replace(s, '[aeiou]', '_', 'g')"},
		{fn: "regexp_count", args: []string{"s", "k:'[aeiou]'"}, py: "lambda s, p: len(__import__('re').findall(p, s))"},
		{fn: "md5", args: []string{"s"}, duck: "md5(s)"},
		{fn: "sha1", args: []string{"s"}, duck: "sha1(s)"},
		{fn: "sha256", args: []string{"s"}, duck: "sha256(s)"},
	})
}

func TestSimilarity(t *testing.T) {
	checkRef(t, []refCase{
		// DuckDB's string distances work on bytes: Python checks characters.
		{fn: "jaccard_similarity", args: []string{"s", "t"}, py: "lambda a, b: len(set(a) & set(b)) / len(set(a) | set(b)) if a or b else 0.0"},
		{fn: "jaccard_similarity", args: []string{"w", "v"}, duck: "CASE WHEN w = '' OR v = '' THEN 0 ELSE jaccard(w, v) END"},
		{fn: "levenshtein_distance", args: []string{"w", "v"}, duck: "levenshtein(w, v)"},
		{fn: "levenshtein_distance", args: []string{"s", "t"}, duck: "levenshtein(s, t)"},
		{fn: "hamming_distance", args: []string{"w", "v"}, duck: "CASE WHEN length(w) = length(v) THEN hamming(w, v) END"},
		{fn: "jaro_winkler_similarity", args: []string{"w", "v"}, duck: "jaro_winkler_similarity(w, v)"},
		{fn: "cosine_similarity", args: []string{"lf", "lg"}, duck: "CASE WHEN len(lf) = len(lg) AND len(lf) > 0 AND list_count(lf) = len(lf) THEN list_cosine_similarity(list_transform(lf, e -> coalesce(e, 0)), lg) END"},
		{fn: "dot_product", args: []string{"lf", "lg"}, duck: "CASE WHEN len(lf) = len(lg) AND list_count(lf) = len(lf) THEN coalesce(list_dot_product(list_transform(lf, e -> coalesce(e, 0)), lg), 0) END"},
	})
}

func TestDatetime(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "year", args: []string{"ts"}, duck: "year(ts)"},
		{fn: "quarter", args: []string{"ts"}, duck: "quarter(ts)"},
		{fn: "month", args: []string{"d"}, duck: "month(d)"},
		{fn: "day_of_month", args: []string{"ts"}, duck: "day(ts)"},
		{fn: "day_of_year", args: []string{"ts"}, duck: "dayofyear(ts)"},
		{fn: "day_of_week", args: []string{"ts"}, duck: "isodow(ts)"},
		{fn: "week_of_year", args: []string{"ts"}, duck: "week(ts)"},
		{fn: "hour_of_day", args: []string{"ts"}, duck: "hour(ts)"},
		{fn: "minute_of_hour", args: []string{"ts"}, duck: "minute(ts)"},
		{fn: "second_of_minute", args: []string{"ts"}, duck: "second(ts)"},
		{fn: "unix_seconds", args: []string{"ts2"}, duck: "floor(epoch(ts2))::BIGINT"},
		{fn: "unix_milliseconds", args: []string{"ts"}, duck: "epoch_ms(ts)"},
		{fn: "is_weekend", args: []string{"d"}, duck: "isodow(d) >= 6"},
		{fn: "from_unix_seconds", args: []string{"x"}, duck: "make_timestamp((x * 1000000)::BIGINT)"},
		{fn: "from_unix_milliseconds", args: []string{"i"}, duck: "make_timestamp(i * 1000)"},
		{fn: "to_date", args: []string{"ts2"}, duck: "ts2::DATE"},
		{fn: "date_trunc", args: []string{"k:'hour'", "ts"}, duck: "date_trunc('hour', ts)"},
		{fn: "date_trunc", args: []string{"k:'week'", "ts"}, duck: "date_trunc('week', ts)"},
		{fn: "date_trunc", args: []string{"k:'quarter'", "d"}, duck: "date_trunc('quarter', d)::TIMESTAMP"},
		{fn: "date_diff", args: []string{"k:'day'", "ts2", "ts"}, duck: "date_diff('day', ts2, ts)"},
		{fn: "date_diff", args: []string{"k:'month'", "ts2", "ts"}, duck: "date_diff('month', ts2, ts)"},
		{fn: "date_diff", args: []string{"k:'hour'", "ts2", "ts"}, duck: "date_diff('hour', ts2, ts)"},
		{fn: "date_diff", args: []string{"k:'year'", "ts", "ts2"}, duck: "date_diff('year', ts, ts2)"},
		{fn: "format_datetime", args: []string{"ts", "k:'%Y-%m-%d %H:%M:%S.%f'"}, duck: "strftime(ts, '%Y-%m-%d %H:%M:%S.%f')"},
		{fn: "format_datetime", args: []string{"ts", "k:'%a %A %b %B %j %y %I%p %%'"}, duck: "strftime(ts, '%a %A %b %B %j %y %I%p %%')"},
	})
}

func TestControl(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "coalesce", args: []string{"x", "y", "k:9.0"}, duck: "coalesce(x, y, 9.0)"},
		{fn: "coalesce", args: []string{"n", "s"}, duck: "s"},
		{fn: "if_then_else", args: []string{"p", "s", "t"}, duck: "CASE WHEN p THEN s ELSE t END"},
		{fn: "if_then_else", args: []string{"q", "i", "y"}, duck: "CASE WHEN q THEN i ELSE y END"},
		{fn: "is_null", args: []string{"s"}, duck: "s IS NULL"},
		{fn: "is_not_null", args: []string{"lf"}, duck: "lf IS NOT NULL"},
		{fn: "nullif", args: []string{"s", "t"}, duck: "nullif(s, t)"},
		{fn: "between", args: []string{"x", "k:0", "y"}, duck: "x BETWEEN 0 AND y"},
		{fn: "fill_nan", args: []string{"x", "k:0.0"}, duck: "x"},
	})
}

func TestLists(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "array_length", args: []string{"lf"}, duck: "len(lf)"},
		{fn: "array_length", args: []string{"li"}, duck: "len(li)"},
		{fn: "element_at", args: []string{"lf", "k:0"}, duck: "lf[1]"},
		{fn: "element_at", args: []string{"li", "k:-1"}, duck: "li[-1]"},
		{fn: "element_at", args: []string{"li", "k:2"}, duck: "li[3]"},
		{fn: "array_contains", args: []string{"li", "k:2"}, duck: "list_contains(li, 2)"},
		{fn: "array_contains", args: []string{"lf", "x"}, duck: "list_contains(lf, x)"},
		{fn: "array_sum", args: []string{"li"}, duck: "CASE WHEN li IS NOT NULL THEN coalesce(list_sum(li), 0) END"},
		{fn: "array_sum", args: []string{"lf"}, duck: "CASE WHEN lf IS NOT NULL THEN coalesce(list_sum(lf), 0) END"},
		{fn: "array_average", args: []string{"lf"}, duck: "list_avg(lf)"},
		{fn: "array_average", args: []string{"li"}, duck: "list_avg(li)"},
		{fn: "array_max", args: []string{"li"}, duck: "list_max(li)"},
		{fn: "array_min", args: []string{"lf"}, duck: "list_min(lf)"},
		{fn: "array_join", args: []string{"split:s", "k:'+'"}, duck: "array_to_string(string_split(s, ','), '+')"},
	})
}

func TestURLsAndCasts(t *testing.T) {
	parse := "lambda u: __import__('urllib.parse').parse.urlparse(u)."
	checkRef(t, []refCase{
		{fn: "url_protocol", args: []string{"u"}, py: parse + "scheme or None"},
		{fn: "url_host", args: []string{"u"}, py: parse + "hostname or None"},
		{fn: "url_path", args: []string{"u"}, py: parse + "path or None"},
		{fn: "url_query", args: []string{"u"}, py: parse + "query or None"},
		{fn: "url_fragment", args: []string{"u"}, py: parse + "fragment or None"},
		{fn: "url_port", args: []string{"u"}, py: parse + "port"},
		{fn: "url_extract_parameter", args: []string{"u", "k:'y'"}, py: "lambda u, n: __import__('urllib.parse').parse.parse_qs(__import__('urllib.parse').parse.urlparse(u).query).get(n, [None])[0]"},
		{fn: "url_extract_parameter", args: []string{"u", "k:'q'"}, py: "lambda u, n: __import__('urllib.parse').parse.parse_qs(__import__('urllib.parse').parse.urlparse(u).query).get(n, [None])[0]"},
		{fn: "to_int", args: []string{"x"}, py: "lambda v: int(v)"},
		{fn: "to_int", args: []string{"k:' 42 '"}, py: "lambda v: int(v)"},
		{fn: "to_int", args: []string{"s"}, py: "lambda v: int(v)"},
		{fn: "to_float", args: []string{"i"}, py: "lambda v: float(v)"},
		{fn: "to_float", args: []string{"k:'2.5e3'"}, py: "lambda v: float(v)"},
		{fn: "to_string", args: []string{"x"}, py: "lambda v: str(v)"},
		{fn: "to_string", args: []string{"k:1e20"}, py: "lambda v: str(v)"},
		{fn: "to_string", args: []string{"i"}, py: "lambda v: str(v)"},
		{fn: "to_string", args: []string{"d"}, duck: "d::VARCHAR"},
	})
}
