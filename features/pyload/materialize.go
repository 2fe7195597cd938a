package pyload

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/suggest"
)

// materializationKeys are the arguments of MaterializationWindowConfig (or
// the keys of its dictionary form) fletch acts on, and Chalk's others,
// which are warned about.
var (
	materializationKeys       = []string{"bucket_duration", "bucket_durations", "backfill_schedule"}
	materializationKeysNotYet = []string{"continuous_buffer_duration", "backfill_resolver", "backfill_lookback_duration", "backfill_start_time"}
)

// materialization reads the `materialization=` argument v of the windowed
// feature group (or of its class, classWide) and checks it against the
// group's windows: every window has a bucket, every window named in
// bucket_durations exists, the cron parses.
func (l *linker) materialization(group *features.Feature, v expr.Node, classWide bool) *features.Materialization {
	name := group.Class.Name + "." + group.Name
	c, ok := v.(*expr.Call)
	if !ok || (c.Func != "dict" && c.Func != "MaterializationWindowConfig") || len(c.Args) > 0 {
		l.errorf(v.Position(), `%s: materialization= must be {"bucket_duration": "1d"} or MaterializationWindowConfig(bucket_duration="1d", ...), found %s`, name, v)
		return nil
	}
	m := &features.Materialization{Pos: v.Position(), BucketDurations: map[time.Duration]time.Duration{}}
	bad := false
	errorf := func(pos expr.Pos, format string, args ...any) {
		bad = true
		l.errorf(pos, name+": materialization: "+format, args...)
	}
	duration := func(n expr.Node, what string) time.Duration {
		s, ok := literalString(asLiteral(n))
		if !ok {
			errorf(n.Position(), `%s must be a duration string like "1d", found %s`, what, n)
			return 0
		}
		d, err := features.ParseDuration(s)
		if err == nil && d <= 0 {
			err = fmt.Errorf("%q is not positive", s)
		}
		if err != nil {
			errorf(n.Position(), "%s: %v", what, err)
			return 0
		}
		return d
	}
	windows := map[time.Duration]*features.Feature{}
	var labels []string
	for _, w := range group.Windows {
		windows[w.Window.Duration] = w
		labels = append(labels, w.Window.Label)
	}
	for _, arg := range c.Named {
		switch arg.Name {
		case "bucket_duration":
			m.BucketDuration = duration(arg.Value, "bucket_duration")
		case "backfill_schedule":
			s, ok := literalString(asLiteral(arg.Value))
			if !ok {
				errorf(arg.Value.Position(), `backfill_schedule must be a cron string like "0 0 * * *", found %s`, arg.Value)
				continue
			}
			if _, err := cron.ParseStandard(s); err != nil {
				errorf(arg.Value.Position(), "backfill_schedule %q is not a cron schedule (minute hour day-of-month month day-of-week, or @daily): %v", s, err)
				continue
			}
			m.BackfillSchedule = s
		case "bucket_durations":
			d, ok := arg.Value.(*expr.Call)
			if !ok || d.Func != "dict" {
				errorf(arg.Value.Position(), `bucket_durations must be a dictionary {"<bucket>": "<window>" or ["<window>", ...]}, found %s`, arg.Value)
				continue
			}
			for _, e := range d.Named {
				bucket := duration(&expr.Literal{Value: e.Name, At: e.Value.Position()}, "bucket_durations key")
				ws := []expr.Node{e.Value}
				if list, ok := e.Value.(*expr.Call); ok && list.Func == "list" {
					ws = list.Args
				}
				for _, wn := range ws {
					w := duration(wn, "window of bucket_durations")
					if w == 0 {
						continue
					}
					if windows[w] == nil {
						if !classWide {
							lit, _ := literalString(asLiteral(wn))
							errorf(wn.Position(), "%q is not a window of %s (windows: %s)%s", lit, name, strings.Join(labels, ", "), suggest.DidYouMean(lit, labels))
						}
						continue
					}
					if prev, dup := m.BucketDurations[w]; dup && prev != bucket {
						errorf(wn.Position(), "window %s has two bucket durations", windows[w].Window.Label)
					}
					m.BucketDurations[w] = bucket
				}
			}
		default:
			if slices.Contains(materializationKeysNotYet, arg.Name) {
				l.g.Warnf(arg.Value.Position(), "%s: materialization: %s is not supported yet: it is ignored", name, arg.Name)
				continue
			}
			errorf(arg.Value.Position(), "unknown setting %s%s (known: %s)", arg.Name, suggest.DidYouMean(arg.Name, materializationKeys), strings.Join(materializationKeys, ", "))
		}
	}
	for _, w := range group.Windows {
		b := m.Bucket(w.Window.Duration)
		switch {
		case b == 0:
			errorf(v.Position(), `window %q has no bucket duration: give bucket_duration="..." or name it in bucket_durations`, w.Window.Label)
		case b > w.Window.Duration:
			errorf(v.Position(), "the bucket of window %q (%s) is longer than the window: a bucket must be at most the window it tiles", w.Window.Label, features.FormatDuration(b))
		}
	}
	if bad {
		return nil
	}
	return m
}

// tileable says why group's expression cannot be tiled ("" when it can):
// tiles hold the partial state of one aggregation over a has-many relation.
func tileable(fd *FeatureDecl) string {
	if _, ok := fd.Expr.(*expr.Agg); ok {
		return ""
	}
	return "tiles hold an aggregation over a relation (_.rel[_.value, _.at > _.chalk_window].sum()), and this expression is not one"
}

// materialize applies the `materialization=` arguments once every feature
// is declared: a windowed feature's own, else its class's (for the class's
// windowed aggregations).
func (l *linker) materialize(c *features.Class, cd *ClassDecl) {
	classWide := cd.Options["materialization"]
	for _, fd := range cd.Features {
		group := c.Feature(fd.Name)
		if group == nil || group.Kind != features.WindowedGroup {
			if v, ok := fd.Options["materialization"]; ok && group != nil {
				l.errorf(v.Position(), "%s.%s: materialization= applies to windowed aggregations (windowed(...)), and %s is not windowed", c.Name, fd.Name, fd.Name)
			}
			continue
		}
		v, own := fd.Options["materialization"]
		if !own {
			if classWide == nil || tileable(fd) != "" {
				continue
			}
			v = classWide
		}
		if why := tileable(fd); why != "" {
			l.errorf(v.Position(), "%s.%s: materialization=: %s", c.Name, fd.Name, why)
			continue
		}
		m := l.materialization(group, v, !own)
		if m == nil {
			continue
		}
		group.Materialization = m
		for _, w := range group.Windows {
			w.Materialization = m
		}
	}
}
