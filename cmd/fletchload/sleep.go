package main

import "time"

// sleeper is a worker's own timer.
type sleeper interface {
	sleep(d time.Duration)
	close()
}

// goSleeper is the portable fallback: Go's timers, coarse on an idle
// process, which the spin after them partly makes up for.
type goSleeper struct{}

func (goSleeper) sleep(d time.Duration) { time.Sleep(d) }
func (goSleeper) close()                {}
