package main

import (
	"testing"

	"github.com/fletch-engine/fletch/tiles"
)

// TestTableState: a tile table whose backfill wrote no chunk (it failed
// at the source, say) is empty, not current: status read "current" with
// 0 chunks after a failed backfill.
func TestTableState(t *testing.T) {
	written := []tiles.Covered{{Range: tiles.Range{Lo: 0, Hi: 10}}}
	for _, tc := range []struct {
		name   string
		t      tiles.TableStatus
		def    string
		ok     bool
		prefix string
	}{
		{"written", tiles.TableStatus{Definition: "d", Ranges: written}, "d", true, "current"},
		{"nothing written", tiles.TableStatus{Feature: "user.total", Definition: "d"}, "d", true, "empty (no chunk written: run fletch aggregate backfill --feature user.total)"},
		{"definition changed", tiles.TableStatus{Definition: "d", Ranges: written}, "e", true, "stale"},
		{"no such feature", tiles.TableStatus{Definition: "d"}, "", false, "unused"},
	} {
		if got := tableState(tc.t, tc.def, tc.ok); len(got) < len(tc.prefix) || got[:len(tc.prefix)] != tc.prefix {
			t.Errorf("%s: %q, want %q…", tc.name, got, tc.prefix)
		}
	}
}
