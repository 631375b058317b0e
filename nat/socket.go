package nat

// The node's one UDP socket. Receive pipeline (one reader goroutine, every
// stage sequential on it; no goroutine per packet or per peer):
//
//	recvmmsg (ReadBatch, up to BatchSize packets into the reader's own buffers)
//	   └─► demux.dispatch: first byte (RFC 7983)
//	         0..3 + magic cookie ─► copy ─► stunConn queue ─► pion UniversalUDPMux
//	                                        (pion's mux worker goroutine) ─► agents
//	         empty, truncated, other 0..3 ─► dropped (counted)
//	         everything else ────────────► Handler(batch)  (buffers borrowed)
//
// Send side: Socket.WriteBatch (sendmmsg) and WriteTo for ipopd's data and
// DTLS; pion writes its STUN through stunConn.WriteTo. All share the socket;
// the kernel serialises sends, so there is no lock here.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/transport/v2"
	"golang.org/x/net/ipv4"
)

const (
	// BatchSize is how many packets one recvmmsg/sendmmsg moves.
	BatchSize = 64
	// MaxPacketSize is the largest datagram received whole; larger ones
	// (possible only with a jumbo-MTU TAP) are dropped as truncated.
	MaxPacketSize = 9216
	// sockBuf is asked of the kernel for each direction; it caps it at
	// net.core.[rw]mem_max, which is fine: this is a hint for bursts.
	sockBuf = 4 << 20
	// maxReadErrors consecutive failed reads make the reader give up.
	maxReadErrors = 100
)

// Packet is one datagram and its peer address.
type Packet struct {
	Data []byte
	Addr netip.AddrPort
}

// Handler receives the non-STUN packets of one read. It is called from the
// single reader goroutine; batch and every Data are borrowed until it
// returns (copy what must outlive the call). It must not block for long:
// while it runs, nothing else is read, STUN included.
type Handler func(batch []Packet)

// SocketStats are cumulative counters.
type SocketStats struct {
	PacketsIn, BytesIn   uint64 // every datagram received
	PacketsOut, BytesOut uint64 // every datagram sent (data and pion's STUN)
	STUNIn               uint64 // handed to pion
	HandlerIn            uint64 // handed to the Handler
	Dropped              uint64 // empty, truncated, not STUN in the STUN range, STUN queue full, no Handler yet
	WriteErrors          uint64 // packets the kernel refused to send
}

// counters are the hot atomics; the reader adds once per batch.
type counters struct {
	packetsIn, bytesIn, packetsOut, bytesOut atomic.Uint64
	stunIn, handlerIn, dropped, writeErrors  atomic.Uint64
}

// Socket is the node's one UDP (IPv4) socket, shared by every ICE agent
// (host and server-reflexive candidates) and by ipopd's data path.
//
// Listen starts its reader, so ICE works before Serve is called; until a
// Handler is installed, non-STUN packets are dropped. After Close, Serve
// returns nil and writes return net.ErrClosed. Close agents first: Close
// also closes the UDP mux they use.
type Socket struct {
	conn  transport.UDPConn
	udp   *net.UDPConn // conn, when it is the host's (nil on a virtual network)
	pc    batchConn    // batch view of conn
	stun  *stunConn
	mux   *ice.UniversalUDPMuxDefault
	net   *filteredNet
	rule  ifaceRule
	log   *slog.Logger
	stats counters

	handler atomic.Pointer[Handler]
	serving atomic.Bool
	closed  atomic.Bool

	readDone chan struct{} // closed when the reader returns
	readErr  error         // set by the reader before readDone is closed

	writers sync.Pool // *writeScratch, see write.go
}

// Listen binds 0.0.0.0:s.Port (IPv4) on network n and starts the reader.
// Host candidates are the addresses of the interfaces s allows, enumerated
// now. n is the host's network when nil; tests pass a virtual one (pion's
// vnet), where packets move one at a time instead of in batches.
func Listen(s Settings, n transport.Net, log *slog.Logger) (*Socket, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("subsystem", "nat")
	rule, err := newIfaceRule(s)
	if err != nil {
		return nil, err
	}
	fnet, err := newFilteredNet(rule, n)
	if err != nil {
		return nil, err
	}
	if len(hostIPv4s(fnet.ifs)) == 0 {
		return nil, fmt.Errorf("%w (interfaces %q, exclude %q, loopback %t)", ErrNoAddress, s.Interfaces, s.Exclude, s.IncludeLoopback)
	}
	conn, err := fnet.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: s.Port})
	if err != nil {
		return nil, fmt.Errorf("nat: listen udp4 port %d: %w", s.Port, err)
	}
	_ = conn.SetReadBuffer(sockBuf)
	_ = conn.SetWriteBuffer(sockBuf)

	sk := &Socket{conn: conn, net: fnet, rule: rule, log: log, readDone: make(chan struct{})}
	if udp, ok := conn.(*net.UDPConn); ok {
		sk.udp, sk.pc = udp, ipv4.NewPacketConn(udp)
	} else {
		sk.pc = singleConn{conn}
	}
	sk.stun = newSTUNConn(conn, &sk.stats)
	sk.mux = ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{
		Logger:  newPionLogs(log).NewLogger("ice-mux"),
		UDPConn: sk.stun,
		Net:     fnet,
	})
	go sk.read()
	log.Debug("socket listening", "addr", conn.LocalAddr(), "hosts", hostIPv4s(fnet.ifs))
	return sk, nil
}

// LocalAddr is the bound address (0.0.0.0:port).
func (s *Socket) LocalAddr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Serve hands every non-STUN packet to h until Close, then returns nil; it
// returns an error wrapping ErrRead if the reader failed, ErrServing if
// called twice.
func (s *Socket) Serve(h Handler) error {
	if h == nil || !s.serving.CompareAndSwap(false, true) {
		return ErrServing
	}
	s.handler.Store(&h)
	<-s.readDone
	return s.readErr
}

// Close stops the reader and closes the mux and the socket. It waits for
// the reader, so no Handler call runs after it returns.
func (s *Socket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	// The mux first, so its worker sees "closed" rather than a read error.
	_ = s.mux.Close()
	err := s.conn.Close()
	<-s.readDone
	return err
}

// Stats returns a snapshot of the counters.
func (s *Socket) Stats() SocketStats {
	c := &s.stats
	return SocketStats{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(),
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(),
		STUNIn: c.stunIn.Load(), HandlerIn: c.handlerIn.Load(),
		Dropped: c.dropped.Load(), WriteErrors: c.writeErrors.Load(),
	}
}

// read is the one reader goroutine. Its BatchSize buffers are allocated
// once and reused for every read. The one steady-state allocation is x/net's:
// ReadBatch builds a fresh *net.UDPAddr (and its IP) for every message and
// offers no way to reuse one, about 2 small allocations per packet.
func (s *Socket) read() {
	defer close(s.readDone)
	msgs := make([]ipv4.Message, BatchSize)
	backing := make([]byte, BatchSize*MaxPacketSize)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{backing[i*MaxPacketSize : (i+1)*MaxPacketSize : (i+1)*MaxPacketSize]}
	}
	d := &demux{stun: s.stun, pkts: make([]Packet, 0, BatchSize), stats: &s.stats}
	fails := 0
	for {
		n, err := s.pc.ReadBatch(msgs, 0)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient kernel errors (ENOBUFS, a stray ICMP report) must
			// not kill the node's only socket; a persistent one must not
			// spin forever either.
			if fails++; fails >= maxReadErrors {
				s.readErr = fmt.Errorf("%w: %w", ErrRead, err)
				s.log.Error("socket reader stopped", "err", err)
				return
			}
			s.log.Debug("socket read", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		fails = 0
		batch := d.dispatch(msgs[:n])
		if len(batch) == 0 {
			continue
		}
		if h := s.handler.Load(); h != nil {
			s.stats.handlerIn.Add(uint64(len(batch)))
			(*h)(batch)
		} else {
			s.stats.dropped.Add(uint64(len(batch)))
		}
	}
}

// batchConn moves batches of datagrams: recvmmsg/sendmmsg on the host's
// network (ipv4.PacketConn), one datagram per call elsewhere (singleConn).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// singleConn is batchConn over a conn without batch calls (pion's vnet):
// each call moves the first message only, which ReadBatch and WriteBatch
// callers handle like a short batch.
type singleConn struct{ c transport.UDPConn }

func (s singleConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	n, addr, err := s.c.ReadFrom(ms[0].Buffers[0])
	if err != nil {
		return 0, err
	}
	ms[0].N, ms[0].Addr, ms[0].Flags = n, addr, 0
	return 1, nil
}

func (s singleConn) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	// The messages' addresses live in a reused scratch, and a virtual
	// network may keep the address it is given (vnet queues it): hand it
	// a copy.
	to := ms[0].Addr
	if ua, ok := to.(*net.UDPAddr); ok {
		to = &net.UDPAddr{IP: slices.Clone(ua.IP), Port: ua.Port}
	}
	if _, err := s.c.WriteTo(ms[0].Buffers[0], to); err != nil {
		return 0, err
	}
	return 1, nil
}

// netipUnmap turns ::ffff:a.b.c.d into a.b.c.d so peers compare equal
// however the kernel reported them.
func netipUnmap(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
