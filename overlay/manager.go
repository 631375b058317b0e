// Package overlay is link control: it sets up the node's peer links with
// ICE and DTLS through link signaling (signaling.go, linkctl.go), keeps
// them alive, and decides with the ring which links exist (ring.go). It
// moves no frames: it publishes an immutable view of the links to the data
// plane (overlay/dataplane), which seals and carries frames on the node's
// own UDP socket, and sends its own control messages through it.
//
// Which links exist is the ring's decision (topology.Ring, ring.go): a few
// successors and chords per node, plus on-demand links toward nodes that
// get much traffic. Frames and control messages for a node with no link
// are routed through the ring, and so is link signaling once a node has a
// link: the rendezvous is needed to bootstrap and as a fallback.
package overlay

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/internal/taskloop"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// Signaler relays link-signaling payloads to other nodes (signal.Client).
type Signaler interface {
	Send(to nodeid.ID, payload []byte) error
	Connected() bool
}

// Socket makes ICE agents that share the node's UDP port (nat.Socket).
type Socket interface {
	NewAgent(st nat.Settings, extra []iceserver.TURN, log *slog.Logger) (*ice.Agent, error)
}

// Config is what a Manager needs. Socket may be nil when Signal never
// connects (a node without a rendezvous makes no links); MaxLinks, Log,
// Ring and OnDemand have defaults; the rest is required.
type Config struct {
	Identity *identity.Identity
	CA       *x509.Certificate
	Network  string
	Socket   Socket
	NAT      nat.Settings
	Signal   Signaler
	// Data is the node's data plane: the manager publishes its view of
	// the links there and sends its control messages through it.
	Data     *dataplane.Plane
	MaxLinks int // hard cap on links of any kind; default 64
	Log      *slog.Logger
	// Ring sizes the ring (topology.successors, topology.chords).
	Ring topology.RingConfig
	// OnDemand is the on-demand link policy, shared with the data plane,
	// which counts the traffic toward each node; nil: none.
	OnDemand *topology.OnDemand
	// RekeyInterval is how often each link's data keys move on
	// (trust.rekey_interval); 0 means wire.RekeyInterval.
	RekeyInterval time.Duration

	// OnLink is told, on the manager's loop, when a link comes up or goes
	// down, and how. It must not block.
	OnLink func(peer nodeid.ID, ev LinkEvent)
}

// LinkEvent is what happened to a link.
type LinkEvent uint8

const (
	LinkUp     LinkEvent = iota + 1
	LinkClosed           // closed on purpose (neither end needs it): the peer is alive
	LinkLost             // failed, or the peer left or restarted
)

// Timing of link set-up and retries.
const (
	iceTimeout       = 30 * time.Second
	handshakeTimeout = 10 * time.Second
	setupTimeout     = 45 * time.Second // a link stuck before up is torn down
	answerTimeout    = 5 * time.Second  // an offer nobody answered
	knockReoffer     = time.Second      // a knock after our offer went this long unanswered gets a new one
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
// link happens in a task on that loop, so link state needs no locks. Other
// goroutines (pion callbacks, set-up goroutines, the data plane's readers
// handing in control messages, the rendezvous client, the control API)
// post tasks. The data plane reads only the views the loop publishes and
// each link's dataplane.Peer.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	self nodeid.ID
	boot uint64 // random per process: tells peers we restarted
	loop *taskloop.Loop

	// Loop-only state.
	links   map[nodeid.ID]*Link
	up      map[nodeid.ID]*Link  // the links the last published view carries data on
	view    *dataplane.View      // the last view published
	present map[nodeid.ID]string // peer ID → name, from the rendezvous
	// appeared is when each present node this node had a link to came
	// back into the presence list: it reconnected to the rendezvous, so
	// it is alive, most likely restarted (see rejoined).
	appeared map[nodeid.ID]time.Time
	listed   bool                 // a presence list has come
	names    map[nodeid.ID]string // from the rendezvous and certificates
	retries  map[nodeid.ID]*retry
	stun     []string
	turn     []iceserver.TURN
	ring     *topology.Ring
	od       *topology.OnDemand      // Add from the data plane, the rest on the loop
	odSince  map[nodeid.ID]time.Time // on-demand links wanted since
	// treeLinks: the trees' links last given to the ring (OnDemand.TreeLinks).
	treeLinks []nodeid.ID
	nextOD    time.Time // next OnDemand.Tick
	learnAt   time.Time // next renewal of the presence leases

	badSignal         atomic.Uint64 // signaling that does not parse or breaks the protocol
	neighborsUnlinked atomic.Uint64 // Neighbors on a link no longer up
	refused           atomic.Uint64 // offers refused: MaxLinks reached
	offerLimited      atomic.Uint64 // offers refused: over the peer's rate
	knockLimited      atomic.Uint64 // knocks not answered with an offer: over the peer's rate
	candRefused       atomic.Uint64 // remote candidates refused: unusable, or too many
	proofRefused      atomic.Uint64 // link proofs shown that do not check
	proofUnknown      atomic.Uint64 // link proofs shown whose signer's certificate is not known (yet)
	proofs            proofs
	limits            struct{ offerCap, offerRate, knockRate, cands *limitlog.Logger }
}

type retry struct {
	attempts int
	knocks   int // unanswered knocks since the last offer from the peer
	next     time.Time
	offers   *rate.Limiter // new sessions, offered by the peer or for its knocks (nil until the first)
}

// newSession reports whether the peer may have another session set up
// now (an ICE agent, candidates gathered, a TURN allocation): offers it
// sends and offers its knocks ask for share one budget.
func (r *retry) newSession() bool {
	if r.offers == nil {
		r.offers = rate.NewLimiter(rate.Every(offerEvery), offerBurst)
	}
	return r.offers.Allow()
}

// A peer may have a new session about once a second (a few at once): far
// more than restarts and retries need, and each costs an ICE agent.
const (
	offerEvery = time.Second
	offerBurst = 4
)

// A link whose peer sent nothing that authenticates for silentAfter is
// dead. Idle links carry a keepalive every tick or two (liveness.go in
// the data plane), so that is 3 to 6 keepalives lost in a row: about
// 10^-6 or less on an underlay with 1% random loss, while a killed peer
// is noticed within silentAfter and a tick.
const silentAfter = 3 * time.Second

// maxKnocks unanswered knocks (about 7 s with the backoff) count as a
// failed set-up.
const maxKnocks = 3

// NewManager returns a manager and registers its control messages with
// the data plane; Run starts it.
func NewManager(cfg Config) *Manager {
	if cfg.MaxLinks <= 0 {
		cfg.MaxLinks = 64
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.OnDemand == nil {
		cfg.OnDemand = topology.NewOnDemand(topology.OnDemandConfig{})
	}
	var b [8]byte
	rand.Read(b[:])
	m := &Manager{
		cfg: cfg, log: cfg.Log, self: cfg.Identity.ID, boot: binary.BigEndian.Uint64(b[:]) | 1,
		loop:     taskloop.New(256),
		links:    map[nodeid.ID]*Link{},
		up:       map[nodeid.ID]*Link{},
		view:     cfg.Data.View(),
		present:  map[nodeid.ID]string{},
		appeared: map[nodeid.ID]time.Time{},
		names:    map[nodeid.ID]string{},
		retries:  map[nodeid.ID]*retry{},
		ring:     nil, // below: its Attested reads m
		od:       cfg.OnDemand,
		odSince:  map[nodeid.ID]time.Time{},
	}
	// Nodes the ring may learn from peers: those the rendezvous listed or
	// whose certificate was seen (called on the loop, as Apply is).
	rc := cfg.Ring
	rc.Attested = func(id nodeid.ID) bool {
		_, listed := m.present[id]
		return listed || cfg.Data.Directory().Get(id) != nil
	}
	rc.Proven = m.proven
	m.ring = topology.NewRing(cfg.Identity.ID, rc)
	m.proofs = proofs{prover: cfg.Data.Signer(), held: map[nodeid.ID][]byte{}, proven: map[nodeid.ID]map[nodeid.ID]time.Time{},
		pending: map[nodeid.ID]pendingProofs{}}
	m.limits.offerCap = limitlog.New(m.log, slog.LevelWarn, "offers refused: the link cap is reached (offer_over_max_links)", 0)
	m.limits.cands = limitlog.New(m.log, slog.LevelWarn, "remote candidates refused: unusable address or too many (candidate_refused)", 0)
	m.limits.offerRate = limitlog.New(m.log, slog.LevelWarn, "offers refused: a peer offers new sessions too often (offer_rate_limited)", 0)
	m.limits.knockRate = limitlog.New(m.log, slog.LevelWarn, "knocks ignored: a peer asks for new sessions too often (knock_rate_limited)", 0)
	cfg.Data.HandleControl(dataplane.KindRing, m.onRingMessage)
	cfg.Data.HandleControl(dataplane.KindSignal, m.onSignalMessage)
	cfg.Data.HandleControl(dataplane.KindProof, m.onProofMessage)
	cfg.Data.HandleRoam(m.onRoam)
	return m
}

// post runs f on the loop. After the loop has stopped, f is dropped.
func (m *Manager) post(f func()) { m.loop.Post(f) }

// call runs f on the loop and waits for it.
func (m *Manager) call(f func()) bool { return m.loop.Call(f) }

// Run is the loop. It returns when ctx is done, after saying bye to every
// peer and closing every link.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	lctx, stopLiveness := context.WithCancel(ctx)
	liveness := make(chan struct{})
	go func() {
		defer close(liveness)
		m.cfg.Data.RunLiveness(lctx, func(peer *dataplane.Peer, suspect bool) {
			m.post(func() { m.onSuspect(peer, suspect) })
		})
	}()
	// (Deferred before the loop's Close, so it runs after it: a post
	// from the liveness goroutine into a full queue returns then.)
	defer func() { stopLiveness(); <-liveness }()
	defer m.loop.Close()
	for {
		select {
		case f := <-m.loop.Tasks():
			f()
			m.step(time.Now())
		case now := <-t.C:
			m.maintain(now)
			m.step(now)
		case <-ctx.Done():
			m.shutdown()
			return nil
		}
	}
}

func (m *Manager) shutdown() {
	for _, l := range m.links {
		if l.state != stateDown {
			m.sendTo(l.peer, &linkMsg{Kind: kindBye, Session: l.session, Why: byeLeaving})
		}
		m.down(l, "shutting down")
	}
}

// keepAlive sends l's peer a keepalive when nothing else went to it since
// the last tick, and takes l down once the peer has been silent for
// silentAfter.
func (m *Manager) keepAlive(l *Link, now time.Time) {
	if tx := l.dp.Stats.TxPackets.Load(); tx == l.lastTx {
		m.cfg.Data.Keepalive(l.dp)
	}
	l.lastTx = l.dp.Stats.TxPackets.Load()
	heard := l.dp.Heard()
	if heard.Before(l.upAt) {
		heard = l.upAt
	}
	if silent := now.Sub(heard); silent >= silentAfter {
		m.failed(l, "peer silent for "+silent.Round(100*time.Millisecond).String())
	}
}

// onRoam moves a link to the address its peer's packets now come from
// (the data plane authenticated one there: its NAT forgot the mapping,
// or its address changed). Relayed paths stay: TURN owns those.
func (m *Manager) onRoam(peer *dataplane.Peer, addr netip.AddrPort) {
	m.post(func() {
		l := m.links[peer.ID]
		if l == nil || l.dp != peer || l.state != stateUp || l.remoteAddr == addr {
			return
		}
		pa := l.dp.Path()
		if pa == nil || pa.Relay != nil {
			return
		}
		old := l.remoteAddr
		l.remoteAddr = addr
		np := *pa
		np.Remote = addr
		l.dp.SetPath(&np)
		l.log.Info("peer moved: its packets authenticate from a new address", "from", old.String(), "to", addr.String())
		m.publish()
	})
}

// onSuspect takes the data plane's word that an up link's peer went
// silent while this node sends to it (or was heard again): routes go
// around it meanwhile (dataplane's fast reroute); keepAlive still takes
// the link down after silentAfter.
func (m *Manager) onSuspect(peer *dataplane.Peer, suspect bool) {
	l := m.links[peer.ID]
	if l == nil || l.dp != peer || l.state != stateUp {
		return
	}
	switch q := peer.Quality(); {
	case suspect && q.Around == "lossy":
		l.log.Info("link loses packets while traffic goes over it: routing around the peer", "probes_lost_of_16", q.Lost)
	case suspect:
		l.log.Debug("peer silent while traffic goes to it: routing around it", "silent_for", time.Since(peer.Heard()).Round(10*time.Millisecond).String())
	default:
		l.log.Debug("peer heard again, link not losing: routing through it")
	}
	m.ring.Suspect(peer.ID, suspect)
	m.publish()
}

// OnPeers takes the rendezvous's presence list (self excluded).
func (m *Manager) OnPeers(peers []PeerInfo) {
	m.post(func() {
		now, old := time.Now(), m.present
		m.present = make(map[nodeid.ID]string, len(peers))
		for _, p := range peers {
			if p.ID != m.self && !m.cfg.Data.Directory().Revoked(p.ID) {
				m.present[p.ID] = p.Name
				m.names[p.ID] = p.Name
				m.ring.Learn(p.ID, now)
				if _, was := old[p.ID]; !was && m.listed && m.links[p.ID] != nil {
					// Back at the rendezvous (a session only it can
					// open), after a link to it: alive, whatever that
					// link said. (Only then: a node that joins for the
					// first time is reached through the overlay as soon
					// as a route exists.)
					m.appeared[p.ID] = now
					m.ring.Alive(p.ID)
				}
			}
		}
		m.listed = true
		for id := range old {
			if _, still := m.present[id]; !still {
				m.ring.Forget(id)
				delete(m.appeared, id)
			}
		}
		m.learnAt = now.Add(m.ring.Config().Refresh / 2)
	})
}

// PeerInfo is a node the rendezvous lists.
type PeerInfo struct {
	ID   nodeid.ID
	Name string
}

// OnWelcome takes the STUN servers and TURN credentials a rendezvous handed
// out; they add to the node's own for links set up from now on.
func (m *Manager) OnWelcome(stun []string, turn []iceserver.TURN) {
	m.post(func() { m.stun, m.turn = stun, turn })
}

// OnRelay takes a link-signaling payload another node sent us through
// the rendezvous.
func (m *Manager) OnRelay(from nodeid.ID, payload []byte) {
	m.onSignal(from, payload, false)
}

// onSignalMessage takes link signaling that came through the overlay
// (control kind 17, routed or direct).
func (m *Manager) onSignalMessage(from nodeid.ID, payload []byte, _ bool) error {
	m.onSignal(from, payload[1:], true)
	return nil
}

// onSignal takes link signaling that came through the rendezvous or, with
// overlay set, through the overlay.
func (m *Manager) onSignal(from nodeid.ID, payload []byte, overlay bool) {
	if m.cfg.Data.Directory().Revoked(from) {
		m.badSignal.Add(1) // a revoked node gets no link
		return
	}
	msg, err := parseLinkMsg(payload)
	if err != nil {
		m.badSignal.Add(1)
		m.log.Debug("dropped link signaling", "from", from.Short(), "err", err)
		return
	}
	m.post(func() { m.handle(from, msg, overlay) })
}

// maintain gives up on set-ups that hang, turns the traffic counted
// toward each node into on-demand links (once a second), and renews the
// presence leases while the rendezvous is connected. step then acts.
func (m *Manager) maintain(now time.Time) {
	m.prune(now)
	m.sendProofs(now)
	m.checkPending(now)
	m.cfg.Data.MaintainE2E(now)
	m.cfg.Data.Tick(now)
	for _, l := range m.links {
		if l.state == stateUp {
			m.keepTrusted(l, now)
			m.keepAlive(l, now)
			if l.state == stateDown && m.relink(l, now) {
				m.want(l.peer, now) // lost just now: at once (see below)
			}
			continue
		}
		switch {
		case l.state == stateDown && m.relink(l, now):
			// The ring holds the peer down (it picks others meanwhile),
			// but the peer is still at the rendezvous: most likely only
			// the path died (a TURN server, a NAT). Set the link up again
			// at once, then with backoff; once up, the hold ends.
			m.want(l.peer, now)
		case (l.state == stateConnecting || l.state == stateHandshake) && now.Sub(l.started) > setupTimeout:
			m.setupFailed(l, "set-up timed out")
		case l.state == stateConnecting && l.initiator && !l.answered && now.Sub(l.started) > answerTimeout:
			if l.sigOverlay && m.cfg.Signal.Connected() {
				// The overlay route may be what failed: the next attempt
				// goes by the rendezvous, soon.
				m.down(l, "offer not answered through the overlay")
				m.retryFor(l.peer).next = now
				continue
			}
			if _, present := m.present[l.peer]; present && m.cfg.Signal.Connected() {
				// The peer is at the rendezvous: signaling was lost (the
				// rendezvous may be rate-limiting it), it did not fail.
				// Again with backoff, through the overlay next if it
				// reaches the peer; no hold-down.
				m.down(l, "offer not answered")
				m.backoff(m.retryFor(l.peer), now)
				continue
			}
			m.setupFailed(l, "offer not answered")
		}
	}
	if !now.Before(m.nextOD) {
		m.nextOD = now.Add(time.Second)
		m.tickOnDemand(now)
	}
	if m.cfg.Signal.Connected() && !now.Before(m.learnAt) {
		m.learnAt = now.Add(m.ring.Config().Refresh / 2)
		for id := range m.present {
			m.ring.Learn(id, now)
		}
	}
}

// relinkFor is how long after losing a link to a peer still present at
// the rendezvous this node keeps trying to link it again, whatever the
// ring wants meanwhile.
const relinkFor = 2 * time.Minute

// relink reports whether the down link l should be set up again now: a
// link to its peer was lost less than relinkFor ago (lostAt; a link that
// is set up again and lost again soon after keeps the first loss's time,
// so a peer whose data path keeps dying is tried for relinkFor, not for
// ever), the peer is not revoked nor its certificate expired, and it is
// still listed by the rendezvous (a node that died is not: its session
// closes with it, and a crashed host's lingers only until it times out).
func (m *Manager) relink(l *Link, now time.Time) bool {
	if l.lostAt.IsZero() || now.Sub(l.lostAt) > relinkFor || !m.cfg.Signal.Connected() ||
		m.cfg.Data.Directory().Revoked(l.peer) || l.cert != nil && now.After(l.cert.NotAfter) {
		return false
	}
	_, present := m.present[l.peer]
	return present && now.After(m.retryFor(l.peer).next)
}

// keepTrusted ends an up link whose peer's certificate has expired or
// was revoked, and moves its data keys on when due.
func (m *Manager) keepTrusted(l *Link, now time.Time) {
	switch {
	case l.cert != nil && now.After(l.cert.NotAfter):
		m.failed(l, "peer certificate expired")
		return
	case m.cfg.Data.Directory().Revoked(l.peer):
		m.failed(l, "peer revoked")
		return
	}
	if p := l.dp.Path(); p != nil && p.Keys.RotateIfDue(now) {
		l.log.Debug("data keys rotated", "generation", p.Keys.Generation())
	}
}

// Bounds of link control's tables beyond the links themselves: down links
// kept for `ipopctl peers`, retry states and names. Outside input (the
// presence list, peers' signaling) can grow them; past the bound the
// oldest or idle entries go.
const (
	maxDownLinks = 64
	maxRetries   = 1024
	maxNames     = 10_000
)

// prune keeps the tables within their bounds.
func (m *Manager) prune(now time.Time) {
	if len(m.links)-m.activeLinks() > maxDownLinks {
		var down []*Link
		for _, l := range m.links {
			if l.state == stateDown {
				down = append(down, l)
			}
		}
		slices.SortFunc(down, func(a, b *Link) int { return a.started.Compare(b.started) })
		for _, l := range down[:len(down)-maxDownLinks] {
			delete(m.links, l.peer)
		}
	}
	if len(m.retries) > maxRetries {
		for id, r := range m.retries {
			if m.links[id] == nil && !now.Before(r.next) {
				delete(m.retries, id)
			}
		}
	}
	if len(m.names) > maxNames {
		for id := range m.names {
			if _, present := m.present[id]; !present && m.links[id] == nil {
				delete(m.names, id)
			}
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

func (m *Manager) retryFor(id nodeid.ID) *retry {
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

// sendTo sends link signaling to id: through the overlay when id is
// reachable there (every other attempt goes by the rendezvous while one
// is connected, in case the overlay route is what fails), else by the
// rendezvous. The messages of one set-up keep to the path it started on,
// so that they arrive in order.
func (m *Manager) sendTo(id nodeid.ID, msg *linkMsg) {
	b := msg.marshal()
	overlay := m.viaOverlay(id)
	if l := m.links[id]; l != nil && msg.Session == l.session && l.state != stateUp && l.state != stateDown {
		overlay = l.sigOverlay && m.routable(id)
	}
	if overlay {
		err := m.cfg.Data.SendControl(id, append([]byte{dataplane.KindSignal}, b...))
		if err == nil {
			return
		}
		m.log.Debug("link signaling not routed", "to", id.Short(), "kind", msg.Kind, "err", err)
	}
	if err := m.cfg.Signal.Send(id, b); err != nil {
		m.log.Debug("link signaling not sent", "to", id.Short(), "kind", msg.Kind, "err", err)
	}
}

func (m *Manager) viaOverlay(id nodeid.ID) bool {
	if !m.routable(id) || m.rejoined(id, time.Now().Add(-rejoinedFor)) {
		// (A node that came back to the rendezvous just now is reached
		// there: routes to it may still end in links to its last run.)
		return false
	}
	if !m.cfg.Signal.Connected() {
		return true
	}
	// With both at hand, the overlay once this node's part of the ring
	// is built (a route exists but need not arrive while the ring is
	// still forming), and every other attempt by the rendezvous.
	r := m.retries[id]
	return m.ringBuilt() && (r == nil || r.attempts == 0 || r.attempts%2 == 1)
}

// rejoinedFor is how long after a node came back to the rendezvous its
// signaling goes by the rendezvous.
const rejoinedFor = 10 * time.Second

// rejoined reports whether id came back into the rendezvous's presence
// list after since (it restarted, or lost its session).
func (m *Manager) rejoined(id nodeid.ID, since time.Time) bool {
	at, ok := m.appeared[id]
	return ok && at.After(since)
}

// ringBuilt reports whether this node's links to its successors are up.
func (m *Manager) ringBuilt() bool {
	succ, _ := m.ring.Desired(time.Now())
	for _, id := range succ {
		if !m.view.Linked(id) {
			return false
		}
	}
	return len(succ) > 0
}

// routable reports whether messages for id can go through the overlay.
func (m *Manager) routable(id nodeid.ID) bool { return m.view.Reachable(id) }

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
