package planner

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Analysis is what one run did, stage by stage, for EXPLAIN ANALYZE
// (RunOptions.Analyze): each resolver query, online store read, has-many
// expansion and frame, with when it started, how long it took and the rows
// it took in and gave out.
type Analysis struct {
	start  time.Time
	mu     sync.Mutex
	Stages []Stage
	Total  time.Duration
	Rows   int // the answer's
}

// Stage is one step of a run.
type Stage struct {
	Frame   string        // the table of the frame's class
	FrameID int           // the frame's index in Plan.Frames
	What    string        // "fetch users [source marketplace]", "online store", "has-many", "frame"
	At      time.Duration // its start, from the run's
	Took    time.Duration
	In, Out int    // rows (or keys) in and out
	Note    string // what else it says ("3 of 5 features served")
}

// ExplainAnalyze is Explain followed by what run a did, stage by stage in
// the order they started.
func (p *Plan) ExplainAnalyze(a *Analysis) string {
	var b strings.Builder
	b.WriteString(p.Explain())
	stages := append([]Stage(nil), a.Stages...)
	sort.SliceStable(stages, func(i, j int) bool { return stages[i].At < stages[j].At })
	fmt.Fprintf(&b, "analyze: %d rows in %s\n", a.Rows, round(a.Total))
	for _, s := range stages {
		fmt.Fprintf(&b, "  at %s took %s: %s of %s: %d in, %d out", round(s.At), round(s.Took), s.What, s.Frame, s.In, s.Out)
		if s.Note != "" {
			b.WriteString(" (" + s.Note + ")")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Frame is one frame of a plan as a console draws it: its class, the frame
// it hangs from, and the resolver queries that fill it.
type Frame struct {
	ID, Parent int // indexes in Plan.Frames; Parent is -1 for the root
	Class      string
	Title      string   // as Explain prints it
	Fetches    []string // "items [source marketplace]"
	Columns    int
}

// Frames lists the plan's frames, the root first; Stage.FrameID indexes it.
func (p *Plan) Frames() []Frame {
	out := make([]Frame, len(p.frames))
	for i, f := range p.frames {
		fr := Frame{ID: f.id, Parent: -1, Class: f.class.Table, Title: f.title(), Columns: len(f.cols)}
		if f.parent != nil {
			fr.Parent = f.parent.id
		}
		lookups := f.lookups
		if f.origin != nil {
			lookups = append([]*lookup{f.origin}, lookups...)
		}
		for _, l := range lookups {
			if l.resolver != nil {
				fr.Fetches = append(fr.Fetches, l.resolver.Name+" [source "+l.resolver.Source+"]")
			} else {
				fr.Fetches = append(fr.Fetches, "python "+l.name())
			}
		}
		out[i] = fr
	}
	return out
}
