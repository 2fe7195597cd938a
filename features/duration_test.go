package features

import (
	"testing"
	"time"
)

// TestFormatDuration: windows and buckets are spelled in their largest
// whole unit, as the seeds write them, and read back to the same duration.
func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7d"},
		{36 * time.Hour, "36h"},
		{90 * time.Minute, "90m"},
		{10 * time.Minute, "10m"},
		{45 * time.Second, "45s"},
		{24 * time.Hour, "1d"},
		{365 * 24 * time.Hour, "365d"},
		{1500 * time.Millisecond, "1.5s"},
		{0, "0s"},
	} {
		got := FormatDuration(tc.d)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if tc.d >= time.Second && tc.d%time.Second == 0 {
			if back, err := ParseDuration(got); err != nil || back != tc.d {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.d)
			}
		}
	}
}
