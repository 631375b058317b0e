package overlay

import (
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v2"
)

// dtlsConn is the net.Conn pion/dtls runs its handshake over. Writes go
// through the ICE conn, which picks the path (our socket for host and srflx
// pairs, the TURN allocation for relayed ones). Reads come from records the
// socket reader (or the link's relay reader) routed to this link by source
// address and first byte; no data frame ever passes through here.
type dtlsConn struct {
	ice  *ice.Conn
	in   chan []byte // records owned by the receiver once sent
	done chan struct{}
	once sync.Once
}

func newDTLSConn(c *ice.Conn) *dtlsConn {
	return &dtlsConn{ice: c, in: make(chan []byte, 32), done: make(chan struct{})}
}

// Deliver hands a copy of a record to the handshake; a full queue drops it
// (DTLS retransmits flights).
func (c *dtlsConn) Deliver(b []byte) bool {
	select {
	case c.in <- append([]byte(nil), b...):
		return true
	default:
		return false
	}
}

func (c *dtlsConn) Read(p []byte) (int, error) {
	select {
	case b := <-c.in:
		return copy(p, b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *dtlsConn) Write(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.ice.Write(p)
}

// Close stops Read; the ICE conn belongs to the link and is closed there.
func (c *dtlsConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *dtlsConn) LocalAddr() net.Addr  { return c.ice.LocalAddr() }
func (c *dtlsConn) RemoteAddr() net.Addr { return c.ice.RemoteAddr() }

// Deadlines are not needed: handshakes run under a context, and Close
// unblocks Read.
func (c *dtlsConn) SetDeadline(time.Time) error      { return nil }
func (c *dtlsConn) SetReadDeadline(time.Time) error  { return nil }
func (c *dtlsConn) SetWriteDeadline(time.Time) error { return nil }
