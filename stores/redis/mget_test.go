package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

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

// fakeRedis is a server on a net.Listener that reads each command and
// answers what reply says for it: the reply reader tested against replies
// Redis would not send, or sends cut short.
type fakeRedis struct {
	addr  string
	mu    sync.Mutex
	conns int // accepted so far
}

// startFake serves reply on a new listener until the test ends. reply gets
// the command's arguments and the connection (to close, or stall on); it
// returns the bytes to answer, or false to close the connection.
func startFake(t *testing.T, reply func(args []string, nc net.Conn) ([]byte, bool)) *fakeRedis {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{addr: lis.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				r := bufio.NewReader(nc)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					out, ok := reply(args, nc)
					if !ok {
						return
					}
					if _, err := nc.Write(out); err != nil {
						return
					}
				}
			})
		}
	})
	return f
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		arg, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args[i] = strings.TrimSuffix(arg, "\r\n")
	}
	return args, nil
}

func TestMgetReplies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reply string // "" closes the connection instead
		want  []string
		err   string
	}{
		{name: "values and nil", reply: "*3\r\n$3\r\nabc\r\n$-1\r\n$0\r\n\r\n", want: []string{"abc", "", ""}},
		{name: "binary value", reply: "*3\r\n$4\r\na\r\nb\r\n$-1\r\n$-1\r\n", want: []string{"a\r\nb", "", ""}},
		{name: "error reply", reply: "-ERR max number of clients reached\r\n", err: "ERR max number of clients reached"},
		{name: "nil array", reply: "*-1\r\n", err: "MGET of 3 keys answered -1 values"},
		{name: "fewer values", reply: "*2\r\n$1\r\na\r\n$1\r\nb\r\n", err: "answered 2 values"},
		{name: "an error among the values", reply: "*3\r\n$1\r\na\r\n-WRONGTYPE\r\n", err: "WRONGTYPE"},
		{name: "not an array", reply: "+OK\r\n", err: `unexpected reply "+OK"`},
		{name: "no CR", reply: "*3\n", err: "malformed reply"},
		{name: "bad length", reply: "*3\r\n$x\r\n", err: "malformed reply"},
		{name: "a value larger than Redis stores", reply: "*3\r\n$99999999999\r\n", err: "a value of 99999999999 bytes"},
		{name: "cut in a value", reply: "*3\r\n$10\r\nabc", err: "unexpected EOF"},
		{name: "cut after the header", reply: "*3\r\n", err: "EOF"},
		{name: "disconnect", err: "EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, func(args []string, nc net.Conn) ([]byte, bool) {
				if tt.reply == "" {
					return nil, false
				}
				if strings.HasPrefix(tt.name, "cut") {
					nc.Write([]byte(tt.reply))
					return nil, false
				}
				return []byte(tt.reply), true
			})
			p := newMgetPool(f.addr, "", 0, time.Second, time.Second, 2, 2)
			defer p.close()
			c, err := p.get(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.mget(context.Background(), []string{"k1", "k2", "k3"})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				p.discard(c)
				return
			}
			if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			p.put(c)
		})
	}
}

// TestMgetSlowReply: a server that stops answering costs a caller without
// a deadline the pool's I/O timeout, and one with a context its context.
func TestMgetSlowReply(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	f := startFake(t, func([]string, net.Conn) ([]byte, bool) { <-stall; return nil, false })
	p := newMgetPool(f.addr, "", 0, time.Second, 50*time.Millisecond, 2, 2)
	c, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := c.mget(context.Background(), []string{"k"}); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("no deadline, a stalled server: %v, want a timeout", err)
	}
	p.discard(c)
	ctx, cancel := context.WithCancel(context.Background())
	c, err = p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := c.mget(ctx, []string{"k"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v", err)
	}
	p.discard(c)
}

// TestMgetPoolBound: at most maxOpen connections are in use; a caller
// beyond waits for one to be given back, or for its deadline (or the I/O
// timeout without one). Connections given back are used again.
func TestMgetPoolBound(t *testing.T) {
	f := startFake(t, func(args []string, _ net.Conn) ([]byte, bool) {
		return []byte("*1\r\n$2\r\nok\r\n"), true
	})
	p := newMgetPool(f.addr, "", 0, time.Second, 50*time.Millisecond, 2, 2)
	defer p.close()
	a, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.get(context.Background()); err == nil || !strings.Contains(err.Error(), "all 2 connections busy") {
		t.Errorf("a third connection: %v, want all busy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third connection within a deadline: %v", err)
	}
	got := make(chan error)
	go func() {
		c, err := p.get(context.Background())
		if err == nil {
			_, err = c.mget(context.Background(), []string{"k"})
			p.put(c)
		}
		got <- err
	}()
	p.put(a)
	if err := <-got; err != nil {
		t.Errorf("after one was given back: %v", err)
	}
	p.put(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns != 2 {
		t.Errorf("%d connections dialed, want 2 (given back, then used again)", f.conns)
	}
}

// TestMgetHello: AUTH and SELECT on a new connection; a refused AUTH is
// the caller's error, naming the command.
func TestMgetHello(t *testing.T) {
	f := startFake(t, func(args []string, _ net.Conn) ([]byte, bool) {
		switch {
		case args[0] == "AUTH" && args[1] == "right":
			return []byte("+OK\r\n"), true
		case args[0] == "AUTH":
			return []byte("-WRONGPASS invalid username-password pair\r\n"), true
		case args[0] == "SELECT":
			return []byte("+OK\r\n"), true
		}
		return []byte("*1\r\n$1\r\nv\r\n"), true
	})
	p := newMgetPool(f.addr, "right", 3, time.Second, time.Second, 2, 2)
	c, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.mget(context.Background(), []string{"k"}); err != nil || got[0] != "v" {
		t.Errorf("after AUTH and SELECT: %q, %v", got, err)
	}
	p.put(c)
	p.close()
	bad := newMgetPool(f.addr, "wrong", 0, time.Second, time.Second, 2, 2)
	if _, err := bad.get(context.Background()); err == nil || !strings.Contains(err.Error(), "AUTH: WRONGPASS") {
		t.Errorf("a wrong password: %v", err)
	}
	if n := len(bad.inUse); n != 0 {
		t.Errorf("%d connections counted in use after a failed dial", n)
	}
}

// replayConn is a net.Conn whose writes go nowhere: the reply is read from
// the mgetConn's reader.
type replayConn struct{ net.Conn }

func (replayConn) Write(b []byte) (int, error) { return len(b), nil }
func (replayConn) SetDeadline(time.Time) error { return nil }
func (replayConn) Close() error                { return nil }

// FuzzMgetReply reads arbitrary bytes as a server's reply to an MGET of
// three keys: an error or three values, each a part of the reply, never a
// panic or an allocation a length field asked for.
func FuzzMgetReply(f *testing.F) {
	for _, seed := range []string{
		"*3\r\n$3\r\nabc\r\n$-1\r\n$0\r\n\r\n", "-ERR x\r\n", "*-1\r\n", "*3\r\n$99999999999\r\n", "*3\r\n$4\r\na\r\n", "*3\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		c := &mgetConn{timeout: time.Second, nc: replayConn{}, r: bufio.NewReaderSize(bytes.NewReader(reply), 64<<10)}
		vals, err := c.mget(context.Background(), []string{"a", "b", "c"})
		if err != nil {
			return
		}
		if len(vals) != 3 {
			t.Fatalf("%d values for 3 keys", len(vals))
		}
		for _, v := range vals {
			if !bytes.Contains(reply, []byte(v)) {
				t.Fatalf("value %q is not in the reply", v)
			}
		}
	})
}
