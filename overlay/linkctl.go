package overlay

import (
	"context"
	"io"
	"net/netip"
	"time"

	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// offer starts a link as initiator: a fresh agent, its credentials to the
// peer, then candidates as they are gathered (through the overlay or by
// the rendezvous: viaOverlay).
func (m *Manager) offer(peer nodeid.ID) {
	if old := m.links[peer]; old != nil {
		// On purpose, not a loss: the peer asked (a knock only it can
		// sign) or this node restarts its links. Taken as lost, it
		// would hold a peer that just restarted down for 30 s.
		old.closed = true
		m.down(old, "replaced by a new offer")
	}
	l := m.newLink(peer, true, randomSession())
	if l == nil {
		return
	}
	l.sigOverlay = m.viaOverlay(peer)
	ufrag, pwd, err := l.agent.GetLocalUserCredentials()
	if err != nil {
		m.down(l, "ice credentials: "+err.Error())
		return
	}
	m.sendTo(peer, &linkMsg{Kind: kindOffer, Session: l.session, Boot: m.boot, Ufrag: ufrag, Pwd: pwd})
	m.gather(l)
}

// handle is the loop's entry for a valid signaling message.
func (m *Manager) handle(from nodeid.ID, msg *linkMsg, overlay bool) {
	l := m.links[from]
	switch msg.Kind {
	case kindOffer:
		if !from.Less(m.self) {
			m.badSignal.Add(1) // only the lower ID offers
			return
		}
		if l != nil && l.session == msg.Session && l.state != stateDown {
			return // duplicate
		}
		r := m.retryFor(from)
		if !r.newSession() {
			m.offerLimited.Add(1) // each offer would cost an agent
			m.limits.offerRate.Log("from", m.nameOf(from))
			return
		}
		if (l == nil || l.state == stateDown) && m.activeLinks() >= m.cfg.MaxLinks {
			m.refused.Add(1) // a peer cannot make us hold more links than the cap
			m.limits.offerCap.Log("from", m.nameOf(from), "max_links", m.cfg.MaxLinks)
			return
		}
		r.knocks = 0
		m.ring.Alive(from) // it is back (a restart): no hold-down
		if l != nil {
			l.closed = true // replaced on the peer's word, not lost
			m.down(l, "peer sent a new offer")
		}
		if l = m.newLink(from, false, msg.Session); l == nil {
			return
		}
		l.remoteBoot, l.sigOverlay = msg.Boot, overlay // answer the way the offer came
		ufrag, pwd, err := l.agent.GetLocalUserCredentials()
		if err != nil {
			m.down(l, "ice credentials: "+err.Error())
			return
		}
		m.sendTo(from, &linkMsg{Kind: kindAnswer, Session: l.session, Boot: m.boot, Ufrag: ufrag, Pwd: pwd})
		m.gather(l)
		m.connect(l, msg.Ufrag, msg.Pwd)
	case kindAnswer:
		if l == nil || !l.initiator || l.session != msg.Session || l.answered || l.state != stateConnecting {
			return
		}
		l.answered, l.remoteBoot = true, msg.Boot
		m.connect(l, msg.Ufrag, msg.Pwd)
	case kindCand:
		if l == nil || l.session != msg.Session || l.state == stateDown {
			return
		}
		c, err := ice.UnmarshalCandidate(msg.Cand)
		if err != nil {
			m.badSignal.Add(1)
			return
		}
		if l.remotes >= maxRemoteCandidates || !usableCandidate(c, m.cfg.NAT.IncludeLoopback) {
			// Each one costs checks against every local candidate, and
			// a peer must not make this node probe addresses that are
			// no peer's (its own loopback, multicast, broadcast).
			m.candRefused.Add(1)
			m.limits.cands.Log("from", l.String(), "cand", limitlog.Quote(msg.Cand), "candidates", l.remotes)
			return
		}
		l.remotes++
		l.signaled.note(c)
		if err := l.agent.AddRemoteCandidate(c); err != nil {
			l.log.Debug("remote candidate refused", "cand", msg.Cand, "err", err)
		}
	case kindKnock:
		if !m.self.Less(from) {
			return // knocks go to the initiator
		}
		if l != nil && l.state == stateUp && l.remoteBoot == msg.Boot {
			return // our link to this run of the peer is fine
		}
		if l != nil && l.state != stateDown && l.state != stateUp && time.Since(l.started) < handshakeTimeout &&
			!(l.initiator && !l.answered && time.Since(l.started) > knockReoffer) {
			return // a set-up is under way
		}
		// (Our offer unanswered for a while and the peer knocking: it
		// never got the offer, e.g. one routed before the peer could
		// check it, early in a ring's life. Ignoring its knocks until our
		// offer timed out had it take us for gone: 30 s held down.)
		m.ring.Alive(from)
		if !m.retryFor(from).newSession() {
			// A knock with a new boot each time would have this node
			// drop the link and set up another for every one.
			m.knockLimited.Add(1)
			m.limits.knockRate.Log("from", m.nameOf(from))
			return
		}
		// (A node that restarted is offered to by the rendezvous: it is
		// back in the presence list, see viaOverlay. Answering every
		// knock that came by the rendezvous the same way made a member
		// whose relays the rendezvous rate-limits unreachable.)
		m.offer(from)
	case kindBye:
		if l != nil && l.session == msg.Session {
			switch msg.Why {
			case byeUnneeded:
				l.closed = true
				m.down(l, "closed: neither end needs it")
				delete(m.links, from)
			case byeLeaving:
				m.down(l, "peer left")
			default: // restart: the peer will be back at once
				l.closed = true
				m.down(l, "peer closed the link")
			}
			m.retryFor(from).next = time.Now().Add(retryMin)
		}
	}
}

// newLink makes the link and its agent, with callbacks that post to the loop.
func (m *Manager) newLink(peer nodeid.ID, initiator bool, session uint64) *Link {
	name := m.names[peer]
	if name == "" {
		name = "?"
	}
	l := &Link{peer: peer, peerName: name, initiator: initiator, session: session, started: time.Now(), state: stateConnecting,
		dp: dataplane.NewPeer(peer)}
	if old := m.links[peer]; old != nil && old.state != stateUp {
		l.lostAt = old.lostAt // a set-up after a loss: relink goes on if it fails
	}
	l.log = m.log.With("peer", l.String())
	m.links[peer] = l
	agent, err := m.cfg.Socket.NewAgent(m.settings(), m.turn, l.log)
	if err != nil {
		m.setupFailed(l, "ice agent: "+err.Error())
		return nil
	}
	l.agent = agent
	agent.OnCandidate(func(c ice.Candidate) {
		if c != nil {
			m.post(func() {
				if m.links[peer] == l && l.state != stateDown {
					l.gathered.note(c)
					m.sendTo(peer, &linkMsg{Kind: kindCand, Session: session, Cand: c.Marshal()})
				}
			})
		}
	})
	agent.OnSelectedCandidatePairChange(func(local, remote ice.Candidate) {
		m.post(func() { m.selected(l, local, remote) })
	})
	agent.OnConnectionStateChange(func(s ice.ConnectionState) {
		m.post(func() {
			l.log.Debug("ice state", "state", s.String())
			if (s == ice.ConnectionStateFailed || s == ice.ConnectionStateClosed) && m.links[peer] == l {
				if s == ice.ConnectionStateFailed && m.aliveWithoutICE(l) {
					// ICE's consent checks went to the old address of a
					// peer that moved (onRoam), or were lost while data
					// flows; the data plane's liveness decides.
					l.log.Info("ice consent failed, but the peer is heard on the link's own path: kept")
					return
				}
				m.failed(l, "ice "+s.String())
			}
		})
	})
	return l
}

// aliveWithoutICE reports whether an up link can do without its ICE agent:
// its path is on the node's own socket (not pion's TURN allocation) and
// its peer was heard within silentAfter, so keepAlive will still notice
// its death.
func (m *Manager) aliveWithoutICE(l *Link) bool {
	pa := l.dp.Path()
	return l.state == stateUp && pa != nil && pa.Relay == nil && time.Since(l.dp.Heard()) < silentAfter
}

func (m *Manager) gather(l *Link) {
	if err := l.agent.GatherCandidates(); err != nil {
		m.down(l, "gathering candidates: "+err.Error())
	}
}

// selected records the pair ICE chose; DTLS records and data from its
// remote address now reach this link.
func (m *Manager) selected(l *Link, local, remote ice.Candidate) {
	if m.links[l.peer] != l || l.state == stateDown {
		return
	}
	l.localCand, l.remoteCand = local, remote
	addr, err := netip.ParseAddr(remote.Address())
	if err != nil {
		return
	}
	l.remoteAddr = netip.AddrPortFrom(addr.Unmap(), uint16(remote.Port()))
	if p := l.dp.Path(); p != nil {
		np := *p
		np.Remote, np.Relay = l.remoteAddr, l.relayWriter()
		l.dp.SetPath(&np)
	}
	l.log.Info("path selected", "path", l.pathType(), "local", local.String(), "remote", remote.String())
	m.publish()
}

// connect runs ICE and then DTLS off the loop; results come back as tasks.
func (m *Manager) connect(l *Link, ufrag, pwd string) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	agent, id, ca, network := l.agent, m.cfg.Identity, m.cfg.CA, m.cfg.Network
	go func() {
		ictx, icancel := context.WithTimeout(ctx, iceTimeout)
		defer icancel()
		var conn *ice.Conn
		var err error
		if l.initiator {
			conn, err = agent.Dial(ictx, ufrag, pwd)
		} else {
			conn, err = agent.Accept(ictx, ufrag, pwd)
		}
		if err != nil {
			m.post(func() { m.failed(l, "ice: "+err.Error()) })
			return
		}
		dc := newDTLSConn(conn)
		l.dp.SetHandshake(dc)
		m.post(func() {
			if m.links[l.peer] == l && l.state == stateConnecting {
				l.iceConn, l.dconn, l.state = conn, dc, stateHandshake
			}
		})
		go m.cfg.Data.ReadRelay(l.dp, conn)
		hctx, hcancel := context.WithTimeout(ctx, handshakeTimeout)
		defer hcancel()
		dconn, keys, err := handshake(hctx, dc, dtlsConfig(id, ca, network, l.peer), l.initiator, m.cfg.RekeyInterval)
		if err != nil {
			m.post(func() { m.failed(l, err.Error()) })
			return
		}
		// Verified once more to keep what the certificate says: the
		// handshake's callback checked it, and it is the same DER.
		peer, err := identity.VerifyRaw(dconn.ConnectionState().PeerCertificates, ca, network, time.Now())
		if err == nil {
			_, err = m.cfg.Data.Directory().Add(peer)
		}
		if err != nil {
			dconn.Close()
			m.post(func() { m.failed(l, "peer certificate: "+err.Error()) })
			return
		}
		m.post(func() {
			if m.links[l.peer] != l || l.state == stateDown {
				dconn.Close()
				return
			}
			l.dtls, l.state, l.upAt, l.cert = dconn, stateUp, time.Now(), peer
			l.peerName, m.names[l.peer] = peer.Name, peer.Name
			l.log = m.log.With("peer", l.String())
			l.iceConn = conn
			l.dp.SetCert(peer)
			l.dp.SetPath(&dataplane.Path{Keys: keys, Remote: l.remoteAddr, Relay: l.relayWriter()})
			m.retryFor(l.peer).attempts = 0
			l.log.Info("link up", "path", l.pathType(), "remote", l.remoteAddr.String(),
				"setup", time.Since(l.started).Round(time.Millisecond).String())
			m.publish()
			go m.cfg.Data.Established(l.dp) // what the peer sent before we had keys
		})
	}()
}

// failed takes down a link that failed: a link that was up is lost (the
// ring hears of it in publish), one being set up failed.
func (m *Manager) failed(l *Link, reason string) {
	if m.links[l.peer] != l || l.state == stateDown {
		return
	}
	if l.state == stateUp {
		m.down(l, reason)
		return
	}
	m.setupFailed(l, reason)
}

// setupFailed ends a set-up that failed; the ring holds the peer down for
// a while and picks others meanwhile.
func (m *Manager) setupFailed(l *Link, reason string) {
	m.down(l, reason)
	m.ring.LinkFailed(l.peer, time.Now())
}

// down takes a link out of service and releases its resources. Closing
// pion objects can wait on their own goroutines, which may be waiting to
// post to this loop, so it happens off the loop.
func (m *Manager) down(l *Link, reason string) {
	if l.state == stateDown {
		return
	}
	was := l.state
	l.state, l.downReason = stateDown, reason
	l.dp.SetPath(nil)
	l.dp.SetHandshake(nil)
	if l.cancel != nil {
		l.cancel()
	}
	agent, conn, dconn, dc := l.agent, l.iceConn, l.dtls, l.dconn
	go func() {
		if dconn != nil {
			dconn.Close()
		}
		if dc != nil {
			dc.Close()
		}
		if conn != nil {
			conn.Close()
		}
		if agent != nil {
			agent.Close()
		}
	}()
	if was == stateUp {
		l.log.Warn("link down", "reason", reason, "up_for", time.Since(l.upAt).Round(time.Second).String())
	} else {
		l.log.Info("link set-up failed", "reason", reason)
	}
	m.publish()
}

// publish rebuilds the data plane's view of the links, tells the ring of
// links that came or went, and takes its routes.
func (m *Manager) publish() {
	now := time.Now()
	links := make([]dataplane.Link, 0, len(m.links))
	up := make(map[nodeid.ID]*Link, len(m.links))
	for _, l := range m.links {
		if l.state == stateDown {
			continue
		}
		carries := l.dp.Path() != nil
		links = append(links, dataplane.Link{Peer: l.dp, Addr: l.remoteAddr, Up: carries})
		if carries {
			up[l.peer] = l
		}
	}
	type change struct {
		id nodeid.ID
		ev LinkEvent
	}
	var changes []change
	for id := range up {
		if m.up[id] == nil {
			m.ring.LinkUp(id, now)
			changes = append(changes, change{id, LinkUp})
		}
	}
	for id, l := range m.up {
		if up[id] != nil {
			continue
		}
		switch {
		case l.closed:
			m.ring.LinkDown(id, now)
			changes = append(changes, change{id, LinkClosed})
		case m.rejoined(id, l.upAt):
			// Lost, but the peer has come back to the rendezvous since
			// it came up: it restarted, and is to be linked again at
			// once, not held down as dead.
			m.ring.LinkDown(id, now)
			changes = append(changes, change{id, LinkLost})
		default:
			m.ring.LinkFailed(id, now)
			if l.lostAt.IsZero() || now.Sub(l.upAt) > relinkFor {
				l.lostAt = now // (else the loss it was set up again after)
			}
			changes = append(changes, change{id, LinkLost})
		}
	}
	m.up = up
	m.view = dataplane.NewView(links, m.ring.Routes(now))
	m.cfg.Data.Publish(m.view)
	for _, c := range changes {
		if c.ev == LinkUp {
			m.announceTo(c.id, now) // the peer learns our links at once
			m.soon()                // and has our proof of the link within a second
		}
		if m.cfg.OnLink != nil {
			m.cfg.OnLink(c.id, c.ev)
		}
	}
}

// relayWriter is where data for l goes when our side of its pair is a
// TURN relay: pion's conn (nil otherwise: the socket).
func (l *Link) relayWriter() io.Writer {
	if l.iceConn == nil || l.localCand == nil || l.localCand.Type() != ice.CandidateTypeRelay {
		return nil
	}
	return l.iceConn
}

// Restart re-establishes every link, as an ICE restart would: after an
// underlay change (an address or interface came or went) the selected pairs
// may be dead or better ones may exist. Initiators offer again at once;
// responders knock.
func (m *Manager) Restart(reason string) {
	m.post(func() { m.restart(reason, func(*Link) bool { return true }) })
}

// UnderlayChanged takes a change of the node's interfaces or addresses:
// links whose local address is no longer on an interface that is up
// restart (as Restart does), and so do set-ups under way (their
// candidates may be stale); links whose path still has its address keep
// it, and keepalives notice within seconds if it broke all the same.
// Relayed links keep theirs too: TURN's allocation is refreshed from
// whatever address reaches the server, and liveness decides.
func (m *Manager) UnderlayChanged(reason string) {
	m.post(func() {
		have, err := nat.HostAddrs()
		if err != nil {
			m.log.Warn("underlay changed, but its addresses cannot be listed: links kept", "reason", reason, "err", err)
			return
		}
		kept := 0
		m.restart(reason, func(l *Link) bool {
			if l.state != stateUp {
				return true
			}
			if base, ok := localBase(l); ok && !have[base] {
				return true
			}
			kept++
			return false
		})
		if kept > 0 {
			m.log.Info("underlay changed; links whose address is still here kept", "kept", kept, "reason", reason)
		}
	})
}

// restart says bye to and takes down the links that pick selects, for
// reason, and lets them be set up again at once (loop only).
func (m *Manager) restart(reason string, pick func(*Link) bool) {
	n := 0
	for id, l := range m.links {
		if l.state == stateDown || !pick(l) {
			continue
		}
		// Bye first, so the peer drops its side too instead of waiting
		// for its keepalives to stop.
		m.sendTo(id, &linkMsg{Kind: kindBye, Session: l.session})
		l.closed = true // the peer is alive: no hold-down
		m.down(l, reason)
		m.retryFor(id).next = time.Time{}
		n++
	}
	if n > 0 {
		m.log.Info("restarting links", "links", n, "reason", reason)
	}
}

// localBase is the local address l's path leaves from: the host
// candidate's, or a server-reflexive one's base; false for relayed
// paths and before ICE chose.
func localBase(l *Link) (netip.Addr, bool) {
	c := l.localCand
	if c == nil {
		return netip.Addr{}, false
	}
	s := c.Address()
	switch c.Type() {
	case ice.CandidateTypeHost:
	case ice.CandidateTypeServerReflexive, ice.CandidateTypePeerReflexive:
		if c.RelatedAddress() == nil {
			return netip.Addr{}, false
		}
		s = c.RelatedAddress().Address
	default:
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err == nil
}

// maxRemoteCandidates bounds the candidates one set-up takes from the
// peer: a node has a few per interface (host, server-reflexive, relayed).
const maxRemoteCandidates = 32

// usableCandidate reports whether a remote candidate names an address a
// peer can have: UDP, a port, and no unspecified, multicast or broadcast
// address (nor loopback, unless this node's own candidates include it).
func usableCandidate(c ice.Candidate, loopback bool) bool {
	a, err := netip.ParseAddr(c.Address())
	if err != nil || c.Port() == 0 || !c.NetworkType().IsUDP() {
		return false
	}
	a = a.Unmap()
	return !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) &&
		(loopback || !a.IsLoopback())
}
