package functions

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func init() {
	u := []string{"url"}
	part := func(name, doc string, f func(*url.URL) string) *Func {
		return withNulls(fn(name, u, doc, sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
			p, err := url.Parse(str(a[0], i))
			if err != nil {
				b.AppendNull()
				return
			}
			if v := f(p); v != "" {
				putStr(b, v)
				return
			}
			b.AppendNull()
		}), kStr, kStr)), "null for a null, unparsable URL or an absent part")
	}
	builtin(
		part("url_protocol", "the scheme (https), lower case", func(p *url.URL) string { return p.Scheme }),
		part("url_host", "the host name without user or port, lower case", func(p *url.URL) string { return strings.ToLower(p.Hostname()) }),
		part("url_path", "the path, percent-decoded", func(p *url.URL) string { return p.Path }),
		part("url_query", "the query string without '?'", func(p *url.URL) string { return p.RawQuery }),
		part("url_fragment", "the fragment without '#'", func(p *url.URL) string { return p.Fragment }),
		withNulls(fn("url_port", u, "the explicit port number", sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
			p, err := url.Parse(str(a[0], i))
			if err != nil {
				b.AppendNull()
				return
			}
			n, err := strconv.ParseInt(p.Port(), 10, 64)
			if err != nil {
				b.AppendNull()
				return
			}
			putInt(b, n)
		}), kStr, kInt)), "null for a null or unparsable URL or no explicit port"),
		withNulls(fn("url_extract_parameter", []string{"url", "name"}, "the first value of query parameter name",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				p, err := url.Parse(str(a[0], i))
				if err != nil {
					b.AppendNull()
					return
				}
				vals, ok := p.Query()[str(a[1], i)]
				if !ok || vals[0] == "" {
					b.AppendNull()
					return
				}
				putStr(b, vals[0])
			}), kStr, kStr, kStr)), "null when the parameter is absent or empty"),
	)
}
