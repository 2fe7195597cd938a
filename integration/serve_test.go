package integration

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServe runs `fletch serve` on the repository in dir, with env added
// to its environment, until the test ends, and returns its address and what
// it logs.
func startServe(t *testing.T, dir string, env ...string) (string, *lockedBuffer) {
	t.Helper()
	s := startServeProcess(t, dir, nil, env...)
	return s.addr, s.log
}

// serveProcess is a running `fletch serve`.
type serveProcess struct {
	addr    string
	log     *lockedBuffer // stdout
	cmd     *exec.Cmd
	exited  chan struct{} // closed once it exited; then waitErr and stderr are set
	waitErr error
	stderr  strings.Builder // written by cmd.Wait's copy, read after exited
}

// startServeProcess is startServe with more arguments for `fletch serve`,
// returning the process for a test that stops it itself.
func startServeProcess(t *testing.T, dir string, args []string, env ...string) *serveProcess {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &serveProcess{addr: addr, log: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--repo", dir, "--listen", addr}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "serving") {
				close(ready)
			}
		}
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("fletch serve exited:\n%s\n%s", s.log.String(), s.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("fletch serve did not log \"serving\":\n%s", s.log.String())
	}
	return s
}
