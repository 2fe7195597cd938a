package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdSleeper sleeps on a timerfd read through Go's netpoller. Go's own
// timers are coarse when the process is idle (the netpoller then waits in
// epoll with millisecond timeouts: time.Sleep(500µs) overshoots by ~0.7 ms
// on this VM), while a timerfd is an hrtimer with no slack whose expiry
// makes the fd readable, which wakes the netpoller at once. The goroutine
// parks meanwhile and holds no thread.
type timerfdSleeper struct {
	fd int
	f  *os.File
}

func newSleeper() sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return goSleeper{}
	}
	return &timerfdSleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

func (s *timerfdSleeper) sleep(d time.Duration) {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		time.Sleep(d)
		return
	}
	var expirations [8]byte
	if _, err := s.f.Read(expirations[:]); err != nil {
		time.Sleep(d)
	}
}

func (s *timerfdSleeper) close() { s.f.Close() }
