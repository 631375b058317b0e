package nat

import (
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun"
	"golang.org/x/net/ipv4"
)

// class is what the reader does with one received packet. RFC 7983 splits
// the first byte: 0..3 STUN, 16..19 ZRTP, 20..63 DTLS, 64..79 TURN channel,
// 128..191 RTP. We only need the STUN cut: STUN goes to pion, the rest is
// ipopd's link layer's (DTLS handshakes and its own data types).
type class uint8

const (
	classDrop class = iota // empty, truncated, or STUN-range garbage
	classSTUN              // first byte 0..3 and a STUN header with magic cookie
	classData              // anything else: the Handler's
)

// classify looks at one packet. A STUN-range first byte without the magic
// cookie is dropped rather than given to pion: pion hands non-STUN bytes
// from a known address to the ice.Conn buffer, where nobody reads them on a
// direct path, and the link layer never uses that range.
func classify(b []byte) class {
	switch {
	case len(b) == 0:
		return classDrop
	case b[0] <= 3:
		if stun.IsMessage(b) {
			return classSTUN
		}
		return classDrop
	default:
		return classData
	}
}

// demux sorts received batches. It belongs to the reader goroutine; pkts
// is its scratch and is handed to the Handler, so it is reused per batch.
type demux struct {
	stun  *stunConn
	pkts  []Packet
	stats *counters
}

// dispatch sorts msgs (already read; N, Addr and Flags set): STUN is copied
// to pion's queue, data is collected into the returned slice, whose Data
// fields alias msgs' buffers (borrowed until the next read).
func (d *demux) dispatch(msgs []ipv4.Message) []Packet {
	d.pkts = d.pkts[:0]
	var bytes, stunIn, dropped uint64
	for i := range msgs {
		m := &msgs[i]
		bytes += uint64(m.N)
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok || len(m.Buffers) == 0 || m.N > len(m.Buffers[0]) || m.Flags&syscall.MSG_TRUNC != 0 {
			dropped++
			continue
		}
		b := m.Buffers[0][:m.N]
		switch classify(b) {
		case classSTUN:
			if d.stun.deliver(b, ua) {
				stunIn++
			} else {
				dropped++
			}
		case classData:
			// ua.AddrPort does not allocate; Unmap in case the kernel
			// reported a v4-mapped address.
			ap := ua.AddrPort()
			d.pkts = append(d.pkts, Packet{Data: b, Addr: netipUnmap(ap)})
		default:
			dropped++
		}
	}
	d.stats.packetsIn.Add(uint64(len(msgs)))
	d.stats.bytesIn.Add(bytes)
	d.stats.stunIn.Add(stunIn)
	d.stats.dropped.Add(dropped)
	return d.pkts
}

// stunQueue bounds what waits for pion's mux worker. STUN is a trickle
// (checks, keepalives, srflx), so a full queue means pion is stuck and
// dropping is the right answer.
const stunQueue = 256

// stunBufs recycles the copies handed to pion: the reader's own buffers are
// reused by the next read, so STUN must be copied out.
var stunBufs = sync.Pool{New: func() any { b := make([]byte, MaxPacketSize); return &b }}

type stunPacket struct {
	buf  *[]byte
	n    int
	addr *net.UDPAddr // x/net allocates a fresh one per message: safe to keep
}

// stunConn is the net.PacketConn pion's UniversalUDPMux reads from and
// writes to. Reads come from the reader's STUN queue; writes go straight to
// the shared socket. Closing it (pion's mux does) only ends reads.
type stunConn struct {
	conn  net.PacketConn
	in    chan stunPacket
	done  chan struct{}
	once  sync.Once
	stats *counters
}

func newSTUNConn(conn net.PacketConn, stats *counters) *stunConn {
	return &stunConn{conn: conn, in: make(chan stunPacket, stunQueue), done: make(chan struct{}), stats: stats}
}

// deliver queues a copy of b for pion; false if the queue is full.
func (c *stunConn) deliver(b []byte, addr *net.UDPAddr) bool {
	bp := stunBufs.Get().(*[]byte)
	n := copy(*bp, b)
	select {
	case c.in <- stunPacket{buf: bp, n: n, addr: addr}:
		return true
	default:
		stunBufs.Put(bp)
		return false
	}
}

// ReadFrom implements net.PacketConn; after Close it returns net.ErrClosed.
func (c *stunConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pk := <-c.in:
		n := copy(p, (*pk.buf)[:pk.n])
		stunBufs.Put(pk.buf)
		return n, pk.addr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo implements net.PacketConn on the shared socket.
func (c *stunConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.conn.WriteTo(p, addr)
	if err == nil {
		c.stats.packetsOut.Add(1)
		c.stats.bytesOut.Add(uint64(n))
	}
	return n, err
}

// Close ends reads. The shared socket stays open: it is the Socket's.
func (c *stunConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// LocalAddr is the shared socket's (0.0.0.0:port); the mux uses it to see
// that it must enumerate interfaces.
func (c *stunConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Deadlines are accepted and ignored: pion's mux worker never sets them,
// and a deadline here must not reach the shared socket.
func (c *stunConn) SetDeadline(time.Time) error      { return nil }
func (c *stunConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stunConn) SetWriteDeadline(time.Time) error { return nil }
