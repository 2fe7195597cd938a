package redis

import "testing"

// The room a bulk MGET makes ahead: its replies at once when they are
// small, never more than maxAhead beyond the reply at hand, whatever the
// first reply's size.
func TestAhead(t *testing.T) {
	for _, c := range []struct{ size, left, want int }{
		{2551, 10000, 25_510_000}, // 10,000 entities of 250 floats: one allocation
		{2551, 1, 2551},
		{1 << 20, 10000, maxAhead}, // one large entity first: not 10 GB
		{64 << 20, 3, 64 << 20},    // a reply larger than the bound still fits
	} {
		if got := ahead(c.size, c.left); got != c.want {
			t.Errorf("ahead(%d, %d) = %d, want %d", c.size, c.left, got, c.want)
		}
	}
}
