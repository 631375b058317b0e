// Package overlay owns the node's peer links: it sets them up with ICE and
// DTLS through link signaling, keeps them alive, and moves Ethernet frames
// over them on the node's own UDP socket (see datapath.go).
//
// Until the topology manager exists, the manager links to every node the
// rendezvous lists (up to Config.MaxLinks), learns source MACs per link, sends
// unicast frames to the link of the destination MAC and floods the rest.
package overlay

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
)

// Signaler relays link-signaling payloads to other nodes (signal.Client).
type Signaler interface {
	Send(to identity.NodeID, payload []byte) error
	Connected() bool
}

// Socket is the node's UDP socket (nat.Socket): it makes ICE agents sharing
// its port and writes data packets in batches.
type Socket interface {
	NewAgent(st nat.Settings, extra []nat.TURNServer, log *slog.Logger) (*ice.Agent, error)
	WriteBatch(pkts []nat.Packet) (int, error)
}

// FrameWriter takes frames for the TAP (tap.Device).
type FrameWriter interface {
	Write(frames [][]byte) (int, error)
}

// Config is what a Manager needs. All fields but MaxLinks and Log are required.
type Config struct {
	Identity *identity.Identity
	CA       *x509.Certificate
	Network  string
	Socket   Socket
	NAT      nat.Settings
	Signal   Signaler
	TAP      FrameWriter
	// MTU bounds the frames the data path carries (tap MTU).
	MTU      int
	MaxLinks int // default 64
	Log      *slog.Logger

	// OnControl receives control messages peers send over links (sealed like
	// data, FlagControl set). It is called from data-path goroutines with a
	// payload it may keep, and must not block.
	OnControl func(from identity.NodeID, payload []byte)
	// OnLink is told, on the manager's loop, when a link comes up or goes
	// down. It must not block.
	OnLink func(peer identity.NodeID, up bool)
	// Snoop sees every ARP and IPv6 frame that arrives from a link, before
	// delivery (the neighbour table learns remote hosts from them). It is
	// called from data-path goroutines, must not block and must not keep
	// the frame.
	Snoop func(from identity.NodeID, frame []byte)
}

// Multicast decides where multicast and broadcast frames go. Without one
// (nil), they are flooded to every link.
type Multicast interface {
	// Route decides for a multicast or broadcast frame read from the TAP:
	// Flood, Drop, or To, in which case it appends the target nodes to dst.
	Route(frame []byte, dst []identity.NodeID) ([]identity.NodeID, Action)
	// Deliver says whether a multicast frame from a link goes to the TAP.
	Deliver(frame []byte) bool
}

// Action is a Multicast routing decision.
type Action uint8

const (
	Flood Action = iota // every link, once
	Drop                // nowhere (e.g. IGMP/MLD, which are never data)
	To                  // the nodes Route appended
)

// Timing of link set-up and retries.
const (
	iceTimeout       = 30 * time.Second
	handshakeTimeout = 10 * time.Second
	setupTimeout     = 45 * time.Second // a link stuck before up is torn down
	retryMin         = time.Second
	retryMax         = 30 * time.Second
	tick             = 500 * time.Millisecond
	// ICE consent: pion marks a pair disconnected after this long without
	// a STUN answer and failed after twice as long; with keepalives every 2s
	// a dead peer's link is down in about 10s.
	iceDisconnected = 4 * time.Second
	iceFailed       = 4 * time.Second
)

// Manager runs link control on one serial loop: every state change of every
// link happens in a task on that loop, so link state needs no locks. The
// data path reads an immutable snapshot (snap) and per-link atomics.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	self identity.NodeID
	boot uint64 // random per process: tells peers we restarted

	tasks chan func()
	done  chan struct{}

	// Loop-only state.
	links   map[identity.NodeID]*Link
	present map[identity.NodeID]string // peer ID → name, from the rendezvous
	retries map[identity.NodeID]*retry
	stun    []string
	turn    []nat.TURNServer

	// Shared with the data path.
	snap     atomic.Pointer[snapshot]
	mcast    atomic.Pointer[Multicast]
	macs     macTable
	counters counters
	tapMu    sync.Mutex // TAP writes come from the socket reader and relay readers
	fwd      scratch    // Forward's buffers: TAP reader goroutine only
	rcv      scratch    // Receive's buffers: socket reader goroutine only
}

type retry struct {
	attempts int
	next     time.Time
}

// counters are node-wide drops, by reason.
type counters struct {
	badSignal, unknownSource, authFailed, replayed, notData, noPath, tooLong, noMember atomic.Uint64
}

// SetMulticast installs the multicast router the data path consults.
func (m *Manager) SetMulticast(mc Multicast) { m.mcast.Store(&mc) }

func (m *Manager) multicast() Multicast {
	if p := m.mcast.Load(); p != nil {
		return *p
	}
	return nil
}

// NewManager returns a manager; Run starts it.
func NewManager(cfg Config) *Manager {
	if cfg.MaxLinks <= 0 {
		cfg.MaxLinks = 64
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:])
	m := &Manager{
		cfg: cfg, log: cfg.Log, self: cfg.Identity.ID, boot: binary.BigEndian.Uint64(b[:]) | 1,
		tasks:   make(chan func(), 256),
		done:    make(chan struct{}),
		links:   map[identity.NodeID]*Link{},
		present: map[identity.NodeID]string{},
		retries: map[identity.NodeID]*retry{},
	}
	m.snap.Store(&snapshot{})
	m.macs.init()
	return m
}

// post runs f on the loop. After the loop has stopped, f is dropped.
func (m *Manager) post(f func()) {
	select {
	case m.tasks <- f:
	case <-m.done:
	}
}

// call runs f on the loop and waits for it.
func (m *Manager) call(f func()) bool {
	ran := make(chan struct{})
	m.post(func() { f(); close(ran) })
	select {
	case <-ran:
		return true
	case <-m.done:
		return false
	}
}

// Run is the loop. It returns when ctx is done, after saying bye to every
// peer and closing every link.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	defer close(m.done)
	for {
		select {
		case f := <-m.tasks:
			f()
		case now := <-t.C:
			m.macs.tick(now)
			m.maintain(now)
		case <-ctx.Done():
			m.shutdown()
			return nil
		}
	}
}

func (m *Manager) shutdown() {
	for _, l := range m.links {
		if l.state != stateDown {
			m.sendTo(l.peer, &linkMsg{Kind: kindBye, Session: l.session})
		}
		m.down(l, "shutting down")
	}
}

// OnPeers takes the rendezvous's presence list (self excluded).
func (m *Manager) OnPeers(peers []PeerInfo) {
	m.post(func() {
		m.present = make(map[identity.NodeID]string, len(peers))
		for _, p := range peers {
			if p.ID != m.self {
				m.present[p.ID] = p.Name
			}
		}
		m.maintain(time.Now())
	})
}

// PeerInfo is a node the rendezvous lists.
type PeerInfo struct {
	ID   identity.NodeID
	Name string
}

// OnWelcome takes the STUN servers and TURN credentials a rendezvous handed
// out; they add to the node's own for links set up from now on.
func (m *Manager) OnWelcome(stun []string, turn []nat.TURNServer) {
	m.post(func() { m.stun, m.turn = stun, turn })
}

// OnRelay takes a link-signaling payload another node sent us.
func (m *Manager) OnRelay(from identity.NodeID, payload []byte) {
	msg, err := parseLinkMsg(payload)
	if err != nil {
		m.counters.badSignal.Add(1)
		m.log.Debug("dropped link signaling", "from", from.Short(), "err", err)
		return
	}
	m.post(func() { m.handle(from, msg) })
}

// maintain starts links to present peers that have none, retries failed
// ones when their backoff expires, and gives up on set-ups that hang.
func (m *Manager) maintain(now time.Time) {
	for _, l := range m.links {
		if (l.state == stateConnecting || l.state == stateHandshake) && now.Sub(l.started) > setupTimeout {
			m.down(l, "set-up timed out")
		}
	}
	if !m.cfg.Signal.Connected() {
		return // links we have keep running; new ones need signaling
	}
	ids := make([]identity.NodeID, 0, len(m.present))
	for id := range m.present {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Less(ids[j]) })
	for _, id := range ids {
		l := m.links[id]
		if l != nil && l.state != stateDown {
			continue
		}
		if l == nil && m.activeLinks() >= m.cfg.MaxLinks {
			continue
		}
		r := m.retryFor(id)
		if now.Before(r.next) {
			continue
		}
		m.backoff(r, now)
		if m.self.Less(id) {
			m.offer(id)
		} else {
			m.sendTo(id, &linkMsg{Kind: kindKnock, Boot: m.boot})
		}
	}
}

func (m *Manager) activeLinks() int {
	n := 0
	for _, l := range m.links {
		if l.state != stateDown {
			n++
		}
	}
	return n
}

func (m *Manager) retryFor(id identity.NodeID) *retry {
	r := m.retries[id]
	if r == nil {
		r = &retry{}
		m.retries[id] = r
	}
	return r
}

// backoff schedules the next attempt: 1s, 2s, 4s … 30s.
func (m *Manager) backoff(r *retry, now time.Time) {
	d := retryMin << min(r.attempts, 5)
	r.next = now.Add(min(d, retryMax))
	r.attempts++
}

func (m *Manager) sendTo(id identity.NodeID, msg *linkMsg) {
	if err := m.cfg.Signal.Send(id, msg.marshal()); err != nil {
		m.log.Debug("link signaling not sent", "to", id.Short(), "kind", msg.Kind, "err", err)
	}
}

func (m *Manager) settings() nat.Settings {
	st := m.cfg.NAT
	if st.DisconnectedTimeout == 0 {
		st.DisconnectedTimeout = iceDisconnected
	}
	if st.FailedTimeout == 0 {
		st.FailedTimeout = iceFailed
	}
	st.STUN = append(append([]string(nil), st.STUN...), m.stun...)
	return st
}

func randomSession() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}
