// Package dataplane moves Ethernet frames between the TAP and the links,
// by direction, as wireguard-go's send.go/receive.go and nebula's
// inside.go/outside.go do:
//
//   - inside.go: frames read from the TAP, parsed once, to the nodes that
//     should get them (direct, routed through the ring, or a ring
//     broadcast);
//   - outside.go: packets from the node's socket and relayed links, opened,
//     forwarded on when routed through us, delivered to the TAP;
//   - send.go: sealing and batching, shared by both and by control
//     messages (control.go).
//
// The data plane decides nothing about links. Link control (overlay)
// publishes an immutable View of them; the multicast and neighbour planes
// answer per-frame questions through the Multicast and Neighbours
// interfaces and exchange control messages through SendControl,
// BroadcastControl and HandleControl. A fixed set of reader goroutines run
// it (the TAP reader, the socket reader, one relay reader per relayed
// link), each with its own scratch; nothing here starts a goroutine.
package dataplane

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
	"golang.org/x/time/rate"
)

// Socket sends data packets in batches (nat.Socket).
type Socket interface {
	WriteBatch(pkts []nat.Packet) (int, error)
}

// Config is what a Plane needs. Self, MTU, TAP, Signer and Directory are
// required.
type Config struct {
	Self nodeid.ID
	// MTU bounds the frames carried (the TAP's MTU).
	MTU int
	// TAP is read by ReadTAP and written by the outside path and WriteTAP.
	TAP tap.Device
	// Socket sends packets; nil when the node has no socket (no
	// rendezvous, so no links): nothing is ever sent.
	Socket Socket
	// OnDemand counts the bytes sent toward each node, for on-demand
	// links (link control ticks it); nil: nothing is counted.
	OnDemand *topology.OnDemand
	// Signer signs this node's control messages and Directory checks
	// everyone else's (and holds the certificates of the nodes known).
	// Both are required.
	Signer    *trust.Signer
	Directory *trust.Directory
	// Identity is this node's key, for end-to-end keys with the nodes it
	// reaches through others (e2e.go); RekeyInterval how often those
	// rotate (0: wire.RekeyInterval).
	Identity      *identity.Identity
	RekeyInterval time.Duration
	Log           *slog.Logger
}

// Multicast is the multicast plane as the data plane asks it, per frame,
// on the reader goroutines. Without one (Attach with nil), multicast and
// broadcast frames are flooded and delivered.
type Multicast interface {
	// Membership takes an IGMP or MLD frame read from the TAP (for the
	// querier). The frame is borrowed: copy what is kept. IGMP and MLD
	// are never data: they go nowhere else.
	Membership(frame []byte)
	// Route decides for a multicast frame read from the TAP: Flood, Drop,
	// To or Tree, in which case it appends the target nodes to dst (Tree:
	// this node's neighbours on the group's tree), or ToRoot, in which
	// case it appends the group's key and then nodes on the tree (a few
	// subscribers) where the frame may join it (tree.go).
	Route(p *tap.Parsed, frame []byte, dst []nodeid.ID) ([]nodeid.ID, Action)
	// Deliver says whether a multicast frame from a link goes to the TAP.
	Deliver(p *tap.Parsed, frame []byte) bool
	// TreeForward decides for a frame of a group's tree that came from
	// node from, along the tree (along) or passed toward the group's root
	// by a node off the tree: it appends the tree neighbours it goes on
	// to (tree.go).
	TreeForward(p *tap.Parsed, frame []byte, from nodeid.ID, along bool, dst []nodeid.ID) ([]nodeid.ID, TreeVerdict)
}

// TreeVerdict is what Multicast.TreeForward says beside the targets.
type TreeVerdict struct {
	On    bool      // this node is on the group's tree
	Local bool      // its members want the frame
	Key   nodeid.ID // the group's key: where a frame off the tree goes
}

// Action is a Multicast routing decision.
type Action uint8

const (
	Flood  Action = iota // every node, once
	Drop                 // nowhere
	To                   // the nodes Route appended
	Tree                 // down the group's tree: the neighbours Route appended
	ToRoot               // toward the group's root: the key Route appended
)

// Neighbours is the neighbour plane (ARP and IPv6 ND snooping), asked on
// the reader goroutines. Frames are borrowed: copy what is kept.
type Neighbours interface {
	// Local takes an ARP/ND frame read from the TAP and reports whether
	// it goes on to the overlay (it may have been answered here).
	Local(frame []byte) (forward bool)
	// Remote learns from an ARP/ND frame that node from sent us.
	Remote(from nodeid.ID, frame []byte)
}

// Plane is the data plane of one node.
type Plane struct {
	cfg   Config
	clock atomic.Int64 // Unix milliseconds, moved by Tick and RunLiveness (liveness.go)
	log   *slog.Logger
	self  nodeid.ID

	// Set before the readers start (Attach, HandleControl), then read-only.
	mcast    Multicast
	neigh    Neighbours
	handlers [256]ControlHandler

	view      atomic.Pointer[View] // published by link control
	macs      macTable
	floods    floods
	hellos    hellos
	helloRate *rate.Limiter
	held      held // routed packets waiting for their origin's certificate
	outHeld   held // frames and messages waiting for their destination's
	e2e       *e2e
	counters  counters
	limits    limits
	// roamTrials bounds the trial opens of packets from unknown addresses.
	roamTrials *rate.Limiter
	// micros is the microsecond clock probe answers are stamped with
	// (tests set their own).
	micros   func() int64
	onRoam   func(peer *Peer, addr netip.AddrPort) // HandleRoam
	tapStats tapStats

	tapMu sync.Mutex // TAP writes come from the socket and relay readers and WriteTAP
}

// New returns a data plane with an empty view.
func New(cfg Config) *Plane {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Plane{cfg: cfg, log: cfg.Log, self: cfg.Self}
	p.view.Store(emptyView)
	p.limits.init(cfg.Log)
	p.macs.init(time.Now())
	p.macs.log = p.limits.macFull
	p.floods.init()
	p.helloRate = rate.NewLimiter(helloRate, helloBurst)
	p.roamTrials = newRoamLimiter()
	p.micros = func() int64 { return time.Now().UnixMicro() }
	p.e2e = newE2E(cfg.Self, cfg.Identity, cfg.RekeyInterval)
	return p
}

// Attach installs the multicast and neighbour planes (either may be nil).
// It must be called before the readers start.
func (p *Plane) Attach(mc Multicast, nb Neighbours) { p.mcast, p.neigh = mc, nb }

// Publish installs the view of the links that readers use from their next
// batch on. Only link control calls it.
func (p *Plane) Publish(v *View) { p.view.Store(v) }

// View returns the view in use.
func (p *Plane) View() *View { return p.view.Load() }

// Routes returns the routes of the view in use (nil before the first),
// for the multicast plane's trees.
func (p *Plane) Routes() *topology.Routes { return p.view.Load().routes }

// WriteTAP writes frames the node itself makes (queries, neighbour
// answers) to the TAP, serialised with the outside path's writes.
func (p *Plane) WriteTAP(frames [][]byte) (int, error) {
	p.tapMu.Lock()
	n, err := p.cfg.TAP.Write(frames)
	p.tapMu.Unlock()
	p.tapStats.txFrames.Add(uint64(n))
	for _, f := range frames[:n] {
		p.tapStats.txBytes.Add(uint64(len(f)))
	}
	return n, err
}

// LearnMAC binds mac to node id, as if a frame from mac with source ip
// had come from it: the neighbour plane learned from id's advertisement
// (checked against id's certificate) that the host lives there.
func (p *Plane) LearnMAC(mac [6]byte, id nodeid.ID, ip netip.Addr) { p.macs.learn(mac, id, ip) }

// ExpireMACs advances the MAC table's clock and drops entries not seen
// for macAge. The neighbour plane calls it every few seconds.
func (p *Plane) ExpireMACs(now time.Time) { p.macs.tick(now) }

// Signer is this node's signer.
func (p *Plane) Signer() *trust.Signer { return p.cfg.Signer }

// Directory is the certificates of the nodes this node knows.
func (p *Plane) Directory() *trust.Directory { return p.cfg.Directory }

// maxFrame is the longest frame carried: the MTU, the Ethernet header and
// one 802.1Q tag.
func (p *Plane) maxFrame() int { return tap.MaxFrame(p.cfg.MTU) }

// LookupMAC returns the node a MAC was last seen behind, if it is fresh.
func (p *Plane) LookupMAC(mac [6]byte) (nodeid.ID, bool) { return p.macs.lookup(mac) }
