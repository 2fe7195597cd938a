package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// ticksPerSecond is USER_HZ, the unit of /proc's CPU times (100 on every
// Linux this runs on).
const ticksPerSecond = 100

// cpuSample is cumulative CPU time in ticks: this process, the watched
// processes (the server, its stores) and the whole machine. Off Linux
// every figure reads 0.
type cpuSample struct {
	self, watched, machine int64
}

func sampleCPU(pids []int) cpuSample {
	s := cpuSample{self: procTicks("self"), machine: machineTicks()}
	for _, p := range pids {
		s.watched += procTicks(strconv.Itoa(p))
	}
	return s
}

// cores is the CPU used between two samples, in cores: by this process, by
// the watched ones and by everything else (other engineers' builds: a run
// with a high figure there is not to be trusted).
func (s cpuSample) cores(to cpuSample, elapsed time.Duration) (self, watched, other float64) {
	c := func(ticks int64) float64 { return float64(ticks) / ticksPerSecond / elapsed.Seconds() }
	self, watched = c(to.self-s.self), c(to.watched-s.watched)
	return self, watched, max(0, c(to.machine-s.machine)-self-watched)
}

// procTicks is utime + stime of /proc/<pid>/stat (fields 14 and 15; the
// command name before them may hold spaces, so count from its ')').
func procTicks(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// machineTicks is the busy time of all CPUs in /proc/stat: everything but
// idle and iowait.
func machineTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy int64
	for i, f := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		busy += v
	}
	return busy
}
