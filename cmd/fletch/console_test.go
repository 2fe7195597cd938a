package main

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fletch-engine/fletch/console"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/observe"
)

type planned struct{}

func (planned) Explain() string   { return "query user" }
func (planned) Classes() []string { return []string{"user"} }

// BenchmarkQueryHook is what a finished query costs the server's
// observers: the metrics alone (before the console), and the metrics with
// the console's slowest-queries ring, once the minute's slowest are in.
func BenchmarkQueryHook(b *testing.B) {
	m := observe.NewMetrics()
	ring := slowRecorder{console.NewSlowest()}
	start := time.Now()
	for i := range 16 {
		ring.QueryRecorded(flight.Record{Path: "sql", Took: time.Second + time.Duration(i), End: start, Plan: planned{}})
	}
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.QueryDone("sql", codes.OK, time.Millisecond)
			}
		})
	})
	b.Run("metrics+console", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.QueryDone("sql", codes.OK, time.Millisecond)
				ring.QueryRecorded(flight.Record{Path: "sql", Code: codes.OK, Took: time.Millisecond, End: start, Trace: "T", Plan: planned{}})
			}
		})
	})
}
