package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// mgetPool holds connections of its own to a standalone server for Get's
// MGET, whose replies it reads into one buffer per connection: go-redis
// reads every reply into a fresh string, and for 100 packed entities
// (500 KB) allocating and clearing those was an eighth of a query's CPU on
// the server. Everything else (writes, scripts, Clusters) goes through
// go-redis.
type mgetPool struct {
	addr, password string
	db             int
	dialTimeout    time.Duration
	// ioTimeout bounds a call whose context has no deadline: waiting for
	// a connection, and each command's round trip. A server that stops
	// answering must not hold a query (and its connection) forever.
	ioTimeout time.Duration
	// inUse holds a token per connection taken (get) and not yet given
	// back (put, discard): at most cap(inUse) are in use at once, and
	// maxIdle more are kept idle, so the pool never opens more than their
	// sum.
	inUse   chan struct{}
	mu      sync.Mutex
	idle    []*mgetConn
	maxIdle int
}

// defaultIOTimeout is mgetPool.ioTimeout when the store's options say
// nothing: go-redis's read timeout (3 s) plus its write timeout's margin.
const defaultIOTimeout = 5 * time.Second

// maxBulk is the largest value Redis stores (proto-max-bulk-len): a reply
// announcing more is corrupt, and must not size an allocation.
const maxBulk = 512 << 20

func newMgetPool(addr, password string, db int, dialTimeout, ioTimeout time.Duration, maxOpen, maxIdle int) *mgetPool {
	if ioTimeout <= 0 {
		ioTimeout = defaultIOTimeout
	}
	return &mgetPool{addr: addr, password: password, db: db, dialTimeout: dialTimeout, ioTimeout: ioTimeout,
		inUse: make(chan struct{}, max(1, maxOpen)), maxIdle: maxIdle}
}

type mgetConn struct {
	timeout time.Duration // the pool's ioTimeout
	nc      net.Conn
	r       *bufio.Reader
	out     []byte // the request being written
	buf     []byte // the replies' bytes
	end     []int  // end[i]: reply i is buf[end[i-1]:end[i]]; -1 for nil
}

// get takes an idle connection, or dials one, once fewer than the pool's
// bound are in use; give it back with put, or discard it.
func (p *mgetPool) get(ctx context.Context) (*mgetConn, error) {
	select {
	case p.inUse <- struct{}{}:
	default:
		wait := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			wait, cancel = context.WithTimeout(ctx, p.ioTimeout)
			defer cancel()
		}
		select {
		case p.inUse <- struct{}{}:
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("all %d connections busy for %s", cap(p.inUse), p.ioTimeout)
		}
	}
	c, err := p.take(ctx)
	if err != nil {
		<-p.inUse
	}
	return c, err
}

// take takes an idle connection, or dials one.
func (p *mgetPool) take(ctx context.Context) (*mgetConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	d := net.Dialer{Timeout: p.dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &mgetConn{timeout: p.ioTimeout, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	var hello [][]string
	if p.password != "" {
		hello = append(hello, []string{"AUTH", p.password})
	}
	if p.db != 0 {
		hello = append(hello, []string{"SELECT", strconv.Itoa(p.db)})
	}
	for _, cmd := range hello {
		if err := c.simple(ctx, cmd); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%s: %w", cmd[0], err)
		}
	}
	return c, nil
}

// put gives back a connection whose last reply was read whole.
func (p *mgetPool) put(c *mgetConn) {
	defer func() { <-p.inUse }()
	if cap(c.buf) > 4<<20 { // a bulk Get's: not kept around
		c.buf = nil
	}
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// discard closes a connection that failed.
func (p *mgetPool) discard(c *mgetConn) {
	c.nc.Close()
	<-p.inUse
}

// close closes the idle connections; the pool stays usable.
func (p *mgetPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.nc.Close()
	}
	p.idle = nil
}

// do sends args as one command and reads its reply with read, within
// ctx's deadline; a cancelled ctx ends the wait. On an error the
// connection is no longer usable.
func (c *mgetConn) do(ctx context.Context, args []string, read func() error) error {
	c.out = strconv.AppendInt(append(c.out[:0], '*'), int64(len(args)), 10)
	c.out = append(c.out, "\r\n"...)
	for _, a := range args {
		c.out = strconv.AppendInt(append(c.out, '$'), int64(len(a)), 10)
		c.out = append(append(append(c.out, "\r\n"...), a...), "\r\n"...)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.timeout)
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.nc.Write(c.out); err != nil {
		return err
	}
	err := read()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// simple runs a command answered by a status (AUTH, SELECT).
func (c *mgetConn) simple(ctx context.Context, args []string) error {
	return c.do(ctx, args, func() error {
		line, err := c.line()
		if err != nil {
			return err
		}
		if len(line) == 0 || line[0] != '+' {
			return fmt.Errorf("unexpected reply %q", line)
		}
		return nil
	})
}

// mget reads the values of keys (MGET: nil replies are ""). The strings
// alias the connection's buffer: they are valid until it is put back.
func (c *mgetConn) mget(ctx context.Context, keys []string) ([]string, error) {
	args := make([]string, 0, 1+len(keys))
	args = append(append(args, "MGET"), keys...)
	err := c.do(ctx, args, func() error {
		line, err := c.line()
		if err != nil {
			return err
		}
		n, err := header(line, '*')
		if err != nil {
			return err
		}
		if n != len(keys) {
			return fmt.Errorf("MGET of %d keys answered %d values", len(keys), n)
		}
		c.buf, c.end = c.buf[:0], c.end[:0]
		for i := range n {
			line, err := c.line()
			if err != nil {
				return err
			}
			size, err := header(line, '$')
			if err != nil {
				return err
			}
			if size < 0 {
				c.end = append(c.end, -1)
				continue
			}
			if size > maxBulk {
				return fmt.Errorf("malformed reply: a value of %d bytes", size)
			}
			at := len(c.buf)
			// Grown, not appended to: ReadFull overwrites every byte, and
			// clearing 500 KB of replies first was 4 % of a 100-entity
			// query's CPU. Entities of a class are of similar sizes: the
			// room for the replies left is made at once, as many more of
			// this size, rather than by doubling (copying 25 MB twice
			// for 10,000 entities).
			if cap(c.buf)-at < size+2 {
				c.buf = slices.Grow(c.buf, ahead(size+2, n-i))
			}
			c.buf = c.buf[:at+size+2]
			if _, err := io.ReadFull(c.r, c.buf[at:]); err != nil {
				return err
			}
			c.buf = c.buf[:at+size] // the CRLF
			c.end = append(c.end, len(c.buf))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	start := 0
	for i, end := range c.end {
		if end < 0 {
			continue
		}
		out[i] = unsafe.String(unsafe.SliceData(c.buf[start:]), end-start)
		start = end
	}
	return out, nil
}

// maxAhead bounds the room a reply makes for the replies after it: one
// large entity first must not reserve its size 10,000 times over.
const maxAhead = 32 << 20

// ahead is the room to make for a reply of size bytes with left replies
// to read, itself included: as many more of its size, within maxAhead,
// and never less than the reply itself.
func ahead(size, left int) int {
	return max(size, min(size*left, maxAhead))
}

// line reads one reply line without its CRLF; an error reply is an error.
func (c *mgetConn) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply %q", line)
	}
	line = line[:len(line)-2]
	if line[0] == '-' {
		return nil, errors.New(string(line[1:]))
	}
	return line, nil
}

// header parses a "*<n>" or "$<n>" line.
func header(line []byte, kind byte) (int, error) {
	if line[0] != kind {
		return 0, fmt.Errorf("unexpected reply %q", line)
	}
	n, err := strconv.Atoi(string(line[1:])) // a short conversion that does not escape is made on the stack
	if err != nil {
		return 0, fmt.Errorf("malformed reply %q", line)
	}
	return n, nil
}
