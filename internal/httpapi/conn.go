package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// net/http writes a response through a 4 KB buffer on the connection, so
// an answer larger than that (a decision with three ads is about 4.3 KB)
// leaves in two write system calls: the full buffer, then the rest when
// the handler returns. On loopback and behind a proxy each write is its
// own segment, and the reader wakes twice. A decision instead holds its
// connection's writes while it writes and flushes its answer, then sends
// them in one write.
//
// Listener and ConnContext set this up; a handler served without them (in
// tests through httptest, or by another server) writes as usual.

// Listener wraps l so that handlers can hold their connection's writes.
// Serve it with an http.Server whose ConnContext is ConnContext.
func Listener(l net.Listener) net.Listener { return heldListener{l} }

// ConnContext is the http.Server hook that lets a handler find its
// connection (when Listener accepted it).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*heldConn); ok {
		return context.WithValue(ctx, heldConnKey{}, hc)
	}
	return ctx
}

type heldConnKey struct{}

type heldListener struct{ net.Listener }

func (l heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: c}, nil
}

// maxHeld bounds what a held connection buffers; past it, what is held is
// written and holding goes on.
const maxHeld = 64 << 10

// heldBufs are the buffers of held writes, shared by all connections: a
// connection holds one only while a handler holds its writes.
var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// heldConn is a server connection whose writes a handler can hold. Only
// the goroutine serving the connection writes to it, so its state needs
// no lock.
type heldConn struct {
	net.Conn
	held *[]byte // non-nil while writes are held
}

// hold makes the writes that follow wait in memory until release.
func (c *heldConn) hold() {
	if c.held == nil {
		c.held = heldBufs.Get().(*[]byte)
	}
}

// release writes what was held, in one write, and stops holding. If that
// write fails, the connection is closed: the client cannot be sent the
// rest of its answer, and net/http must not reuse it.
func (c *heldConn) release() {
	if c.held == nil {
		return
	}
	err := c.flushHeld()
	if cap(*c.held) <= maxHeld {
		heldBufs.Put(c.held)
	}
	c.held = nil
	if err != nil {
		_ = c.Conn.Close()
	}
}

func (c *heldConn) flushHeld() error {
	b := *c.held
	*c.held = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(b)
	return err
}

// Write holds p while a handler holds the writes, and writes it otherwise.
func (c *heldConn) Write(p []byte) (int, error) {
	if c.held == nil {
		return c.Conn.Write(p)
	}
	if len(*c.held)+len(p) > maxHeld {
		if err := c.flushHeld(); err != nil {
			return 0, err
		}
		if len(p) > maxHeld {
			return c.Conn.Write(p)
		}
	}
	*c.held = append(*c.held, p...)
	return len(p), nil
}

// ReadFrom keeps net/http's sendfile path: it writes what is held, then
// lets the connection copy from r.
func (c *heldConn) ReadFrom(r io.Reader) (int64, error) {
	if c.held != nil {
		if err := c.flushHeld(); err != nil {
			return 0, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection, as net/http does before closing
// it when it has answered with an error.
func (c *heldConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writeWhole writes a 200 answer of body, with its status line and
// headers, in one write system call when the connection allows it.
func writeWhole(c *gin.Context, contentType string, body []byte) {
	c.Writer.Header()["Date"] = httpDate(time.Now())
	hc, _ := c.Request.Context().Value(heldConnKey{}).(*heldConn)
	if hc == nil {
		c.Data(http.StatusOK, contentType, body)
		return
	}
	hc.hold()
	defer hc.release()
	c.Data(http.StatusOK, contentType, body)
	c.Writer.Flush()
}

// httpDate returns the Date header's value at now. net/http formats it for
// every response that has none, 1.2% of navad's CPU under a flat-out
// decision load (BENCHMARKS.md, "Where navad's time goes"); a decision's
// answer takes it from here, formatted once a second. The slice is shared
// by the answers of that second, and only read.
func httpDate(now time.Time) []string {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.value
	}
	d := &formattedDate{sec: sec, value: []string{now.UTC().Format(http.TimeFormat)}}
	lastDate.Store(d)
	return d.value
}

type formattedDate struct {
	sec   int64
	value []string
}

var lastDate atomic.Pointer[formattedDate]
