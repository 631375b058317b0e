package dataplane

import (
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/topology"
)

// View is the data plane's picture of the links: which peer a packet from
// an address belongs to, which peers carry data, and the ring's routes.
// It is immutable: link control builds a new one on every change and
// publishes it (Plane.Publish); readers load it once per batch.
type View struct {
	byAddr map[netip.AddrPort]*Peer // by the selected pair's remote address
	byID   map[nodeid.ID]*Peer      // peers whose link carries data
	up     []*Peer                  // the same, as a list
	routes *topology.Routes         // nil: no ring yet, floods go to every link
}

// Link is one link as link control describes it to NewView.
type Link struct {
	Peer *Peer
	// Addr is the selected pair's remote address (zero before ICE chose
	// one): packets and DTLS records from it belong to Peer.
	Addr netip.AddrPort
	// Up: the link has keys (Peer.Path is set) and carries data.
	Up bool
}

// NewView builds a view of links with the ring's routes (nil before the
// ring has any).
func NewView(links []Link, routes *topology.Routes) *View {
	v := &View{byAddr: make(map[netip.AddrPort]*Peer, len(links)), byID: make(map[nodeid.ID]*Peer, len(links)), routes: routes}
	for _, l := range links {
		if l.Addr.IsValid() {
			v.byAddr[l.Addr] = l.Peer
		}
		if l.Up {
			v.up = append(v.up, l.Peer)
			v.byID[l.Peer.ID] = l.Peer
		}
	}
	return v
}

var emptyView = NewView(nil, nil)

// Linked reports whether id has a link that carries data.
func (v *View) Linked(id nodeid.ID) bool { return v.byID[id] != nil }

// Up lists the peers whose links carry data. The slice is the view's: do
// not modify it.
func (v *View) Up() []*Peer { return v.up }

// Routes is the ring's routing view, nil before there is a ring.
func (v *View) Routes() *topology.Routes { return v.routes }

// Reachable reports whether a control message for id can go through the
// overlay: over its link, routed (to a linked node nearer it, or one that
// links it), or, failing both, flooded over the links there are.
func (v *View) Reachable(id nodeid.ID) bool {
	if p, _ := v.path(id); p != nil {
		return true
	}
	if v.routes == nil {
		return false
	}
	if _, _, ok := v.routes.Route(id); ok {
		return true
	}
	return len(v.up) > 0
}

// path returns the peer and path of the up link to id, if any.
func (v *View) path(id nodeid.ID) (*Peer, *Path) {
	if p := v.byID[id]; p != nil {
		if pa := p.path.Load(); pa != nil {
			return p, pa
		}
	}
	return nil, nil
}

// Peer is one link's state that the data plane uses and counts. Link
// control creates it with the link, sets its handshake while DTLS runs and
// its Path once keys exist; the data plane only reads those (atomics), so
// no lock is shared with it.
type Peer struct {
	ID    nodeid.ID
	Stats PeerStats

	path      atomic.Pointer[Path]
	handshake atomic.Pointer[handshakeRef]
	// heard is when a packet from the peer last authenticated, on the
	// plane's clock (Tick and RunLiveness move it), in Unix milliseconds;
	// 0: never.
	heard atomic.Int64
	// sent is when this node last sent the peer a frame or control
	// message (not a keepalive or probe), got when it last had one from
	// it, on the same clock (liveness.go).
	sent, got atomic.Int64
	// The rest of the fast liveness's state belongs to RunLiveness's
	// goroutine: suspect; when it last probed; the heard stamp it last
	// saw, and the probes sent since.
	suspect    bool
	probed     int64
	lastHeard  int64
	unanswered int
	quality    linkQuality
	// answers: the answers to this node's probes, by sequence number
	// modulo probeRing, each the number (high 32 bits) and the
	// microsecond clock's low 32 bits when it came; readers store them,
	// RunLiveness reads them. loss is the recent loss in sixteenths
	// (-1: not measured), rtt the smoothed round trip in microseconds,
	// for the status.
	answers [probeRing]atomic.Uint64
	loss    atomic.Int32
	rtt     atomic.Int64
	around  atomic.Int32 // aroundSilent, aroundLossy or 0
	// answering limits the answers to the peer's probes.
	answering *rate.Limiter
	cert      atomic.Pointer[identity.Peer] // the peer's verified certificate
	// broadcasts limits the broadcasts and floods taken from the link.
	broadcasts *rate.Limiter

	// earlyMu guards early: data packets that arrived while our side of
	// the handshake was still finishing (the DTLS server completes a
	// round trip before the client and may send at once). They are
	// opened when the keys exist (Plane.Established).
	earlyMu sync.Mutex
	early   [][]byte
}

// maxEarly bounds the packets held per peer before its keys exist; more
// are dropped (no_path).
const maxEarly = 32

// hold keeps a copy of pkt until the keys exist; false when full.
func (p *Peer) hold(pkt []byte) bool {
	p.earlyMu.Lock()
	defer p.earlyMu.Unlock()
	if len(p.early) >= maxEarly {
		return false
	}
	p.early = append(p.early, slices.Clone(pkt))
	return true
}

// takeEarly returns the packets held and forgets them.
func (p *Peer) takeEarly() [][]byte {
	p.earlyMu.Lock()
	defer p.earlyMu.Unlock()
	e := p.early
	p.early = nil
	return e
}

// Broadcasts and floods that one link may bring in: enough for the
// control plane and a busy LAN's ARP in switch mode, not for a member
// that floods the overlay through this node.
const (
	broadcastRate  = 1000 // per second
	broadcastBurst = 2000
)

// NewPeer returns the data-plane state of a new link to id.
func NewPeer(id nodeid.ID) *Peer {
	pe := &Peer{ID: id, broadcasts: rate.NewLimiter(broadcastRate, broadcastBurst), answering: rate.NewLimiter(answerRate, answerBurst)}
	pe.loss.Store(-1)
	return pe
}

// Path is how to send to an up link; immutable, swapped whole.
type Path struct {
	Keys   *wire.Keyring  // the link's rotating data keys
	Remote netip.AddrPort // where to send on the node's socket
	// Relay, when not nil, is our side's TURN allocation (pion's conn):
	// packets go through it, one Write each, instead of the socket.
	Relay io.Writer
}

// SetPath installs the path data goes on (nil: the link carries no data).
func (p *Peer) SetPath(pa *Path) { p.path.Store(pa) }

// Heard returns when a packet from the peer last authenticated, to the
// plane's clock tick (zero: never since the link's keys).
func (p *Peer) Heard() time.Time {
	if ms := p.heard.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// Path returns the current path, nil when the link carries no data.
func (p *Peer) Path() *Path { return p.path.Load() }

// Handshake takes the DTLS records that arrive for a link while its
// handshake runs. Deliver must copy what it keeps and must not block.
type Handshake interface{ Deliver(record []byte) bool }

type handshakeRef struct{ h Handshake }

// SetHandshake routes DTLS records from the link's address to h (nil: drop
// them, and any data packets held for the keys).
func (p *Peer) SetHandshake(h Handshake) {
	if h == nil {
		p.handshake.Store(nil)
		p.takeEarly()
		return
	}
	p.handshake.Store(&handshakeRef{h})
}

// PeerStats are one link's counters, bumped by the readers.
type PeerStats struct {
	TxPackets, TxBytes, RxPackets, RxBytes, Dropped atomic.Uint64
}
