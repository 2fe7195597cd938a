//go:build !unix

package wide

import "time"

// processCPU is unknown off Unix: the benchmarks report no CPU time.
func processCPU() (time.Duration, bool) { return 0, false }
