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
	mu             sync.Mutex
	idle           []*mgetConn
	maxIdle        int
}

type mgetConn struct {
	nc  net.Conn
	r   *bufio.Reader
	out []byte // the request being written
	buf []byte // the replies' bytes
	end []int  // end[i]: reply i is buf[end[i-1]:end[i]]; -1 for nil
}

// get takes an idle connection, or dials one.
func (p *mgetPool) get(ctx context.Context) (*mgetConn, error) {
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
	c := &mgetConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
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
	deadline, _ := ctx.Deadline() // zero: none
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
