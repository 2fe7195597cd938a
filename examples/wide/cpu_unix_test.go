//go:build unix

package wide

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used so far, user and system,
// every thread counted: DuckDB's own threads as well as Go's.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
