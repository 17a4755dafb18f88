package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept() // nil on error; checked below
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

type writeCounter struct {
	net.Conn
	writes int
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

// TestHeldConnBeyondItsBound writes more than maxHeld while holding: what
// is held is written when the bound is reached, nothing is lost or
// reordered, and the connection writes through after release.
func TestHeldConnBeyondItsBound(t *testing.T) {
	server, client := tcpPair(t)
	wc := &writeCounter{Conn: server}
	hc := &heldConn{Conn: wc}
	var want bytes.Buffer
	hc.hold()
	for i := range 40 {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 4<<10) // 160 KB in all
		if n, err := hc.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(p)
	}
	big := bytes.Repeat([]byte{'Z'}, maxHeld+1) // written through, after what is held
	if n, err := hc.Write(big); n != len(big) || err != nil {
		t.Fatalf("big write: %d, %v", n, err)
	}
	want.Write(big)
	hc.hold() // holding twice is holding once
	tail := []byte("tail")
	if _, err := hc.Write(tail); err != nil {
		t.Fatal(err)
	}
	want.Write(tail)
	held := wc.writes
	hc.release()
	if wc.writes != held+1 {
		t.Errorf("release made %d writes, want 1", wc.writes-held)
	}
	// 160 KB held in 64 KB: two flushes on the way, one before the big
	// write, the big write itself.
	if held < 3 || held > 5 {
		t.Errorf("%d writes while holding 160 KB and one %d-byte write", held, len(big))
	}
	after := []byte("after")
	if _, err := hc.Write(after); err != nil {
		t.Fatal(err)
	}
	want.Write(after)
	if wc.writes != held+2 {
		t.Errorf("a write after release was held")
	}
	hc.release() // nothing held: no write
	if wc.writes != held+2 {
		t.Errorf("release with nothing held wrote")
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the bytes read differ from those written")
	}
}

// TestHeldConnClosedWhenReleaseFails checks that a connection whose held
// answer cannot be written is closed, so that net/http does not reuse it.
func TestHeldConnClosedWhenReleaseFails(t *testing.T) {
	server, client := tcpPair(t)
	if err := client.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = client.Close() // a reset: the server's next write fails
	time.Sleep(50 * time.Millisecond)
	hc := &heldConn{Conn: server}
	hc.hold()
	if _, err := hc.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	hc.release()
	if hc.held != nil {
		t.Fatal("still holding after release")
	}
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after a failed release: %v, want the connection closed", err)
	}
}

// TestHTTPDate: the Date header's value is net/http's format of the time,
// formatted once for each second and shared within it.
func TestHTTPDate(t *testing.T) {
	at := time.Date(2026, 11, 27, 19, 30, 5, 100, time.FixedZone("JST", 9*3600))
	v := httpDate(at)
	if len(v) != 1 || v[0] != "Fri, 27 Nov 2026 10:30:05 GMT" {
		t.Fatalf("httpDate(%v) = %q", at, v)
	}
	if w := httpDate(at.Add(800 * time.Millisecond)); &w[0] != &v[0] {
		t.Fatalf("the same second formatted again: %q", w)
	}
	if w := httpDate(at.Add(time.Second)); w[0] != "Fri, 27 Nov 2026 10:30:06 GMT" || v[0] != "Fri, 27 Nov 2026 10:30:05 GMT" {
		t.Fatalf("the next second: %q (the last one now %q)", w, v)
	}
}
