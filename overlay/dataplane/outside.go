package dataplane

// The outside: packets from the node's socket and from relayed links, to
// the TAP or on to the next node.
//
//	socket reader ──Receive(batch)──► per packet: peer by source address (View)
//	   data ──► open: AES-GCM + replay window ──► by flags:
//	      routed ──► route header: for another node? re-seal for the next hop,
//	                 or fan a broadcast on, and deliver it here too; flooded
//	                 control messages: flood.go
//	      control ─► the handler of its kind (HandleControl)
//	      frame ───► deliver ▼
//	      no keys yet (handshake finishing) ──► held, opened by Established
//	   DTLS ──► the peer's handshake (records copied)
//	deliver: tap.Parse, once ─► length check ─► what the origin's certificate
//	         allows (origin.go: source IP, ARP sender, ND target, MAC)
//	         ─► learn the source MAC ─► Neighbours.Remote (ARP, ND)
//	         ─► Multicast.Deliver (groups)
//	──► drain: TAP Write (batch); packets passed on: socket WriteBatch
//
//	relay reader (ReadRelay, one per link; carries traffic only on relayed
//	paths, where pion's TURN conn is the only way in) ──► the same, one
//	packet at a time
//
// Receive runs only on the socket reader goroutine and each ReadRelay on
// its own, each with its own scratch; packets handed in are borrowed until
// the call returns.

import (
	"errors"
	"io"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// Receiver is one reader's state for the outside path.
type Receiver struct {
	p *Plane
	s scratch
}

// NewReceiver returns the state of one outside reader (the socket
// reader's nat.Handler is its Receive).
func (p *Plane) NewReceiver() *Receiver { return &Receiver{p: p} }

// Receive takes a batch from the socket reader: data packets and DTLS
// records from peers (STUN never reaches here).
func (r *Receiver) Receive(batch []nat.Packet) {
	p, s := r.p, &r.s
	v := p.view.Load()
	for _, pkt := range batch {
		if s.used >= scratchSlots {
			p.drain(s)
		}
		peer := v.byAddr[pkt.Addr]
		if peer == nil {
			if !p.roamed(s, v, pkt) {
				p.counters.unknownSource.Add(1)
			}
			continue
		}
		p.outside(s, v, peer, pkt.Data)
	}
	p.drain(s)
}

// ReadRelay reads what arrives through a link's ICE conn until it fails
// (the link closed it). On host and srflx paths nothing does (the socket
// gets it first); on relayed paths it is the only way in.
func (p *Plane) ReadRelay(peer *Peer, conn io.Reader) {
	var s scratch
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		p.outside(&s, p.view.Load(), peer, buf[:n])
		p.drain(&s)
	}
}

// Established opens the data packets peer sent before this node had the
// link's keys. Link control calls it, on a goroutine of its own, once the
// path is set and the view published.
func (p *Plane) Established(peer *Peer) {
	p.release(peer.ID) // what waited for its certificate, which is known now
	early := peer.takeEarly()
	if len(early) == 0 {
		return
	}
	var s scratch
	v := p.view.Load()
	for _, pkt := range early {
		p.outside(&s, v, peer, pkt)
	}
	p.drain(&s)
}

// outside handles one packet from peer.
func (p *Plane) outside(s *scratch, v *View, peer *Peer, pkt []byte) {
	switch {
	case wire.IsData(pkt):
		pa := peer.path.Load()
		if pa == nil {
			switch {
			case peer.handshake.Load() == nil:
				p.counters.noPath.Add(1) // no handshake: a session that is gone
			case !peer.hold(pkt):
				p.counters.earlyDropped.Add(1)
				p.limits.early.Log("peer", peer.ID.Short())
			}
			return // else opened once our side of the handshake is done
		}
		f, flags, err := pa.Keys.Open(s.next(p.maxPacket())[:0], pkt)
		if err != nil {
			peer.Stats.Dropped.Add(1)
			if errors.Is(err, wire.ErrReplay) {
				p.counters.replayed.Add(1)
			} else {
				p.counters.authFailed.Add(1)
			}
			return
		}
		p.opened(s, v, peer, f, flags)
	case len(pkt) > 0 && pkt[0] >= 20 && pkt[0] <= 63: // DTLS (RFC 7983)
		if h := peer.handshake.Load(); h != nil {
			h.h.Deliver(pkt)
		}
	default:
		p.counters.notData.Add(1)
	}
}

// opened handles the contents of a data packet from peer that
// authenticated: f and its flags.
func (p *Plane) opened(s *scratch, v *View, peer *Peer, f []byte, flags byte) {
	peer.Stats.RxPackets.Add(1)
	peer.Stats.RxBytes.Add(uint64(len(f)))
	now := p.clock.Load()
	if peer.heard.Load() != now {
		peer.heard.Store(now) // the link is alive (liveness.go)
	}
	if len(f) > 0 && flags&wire.FlagProbe == 0 && peer.got.Load() != now {
		peer.got.Store(now) // and carries traffic: watched both ways
	}
	switch {
	case len(f) == 0 && flags == 0:
		// A keepalive: it only says the peer is there.
	case flags&wire.FlagProbe != 0:
		switch {
		case flags != wire.FlagProbe || len(f) != 0 && len(f) != wire.ProbeLen:
			p.counters.badProbe.Add(1)
		case len(f) == 0 || f[0] == wire.ProbeAsk:
			p.answerProbe(s, peer, f)
		case f[0] == wire.ProbeAnswer:
			p.probeAnswered(peer, f)
		default:
			p.counters.badProbe.Add(1)
		}
	case flags&wire.FlagTree != 0:
		if flags != wire.FlagTree {
			p.counters.badTree.Add(1)
			return
		}
		p.treeFrame(s, v, peer.ID, f)
	case flags&wire.FlagRouted != 0:
		p.routed(s, v, peer, f)
	case flags&wire.FlagControl != 0:
		p.control(peer.ID, f, true, false, nil)
	default:
		p.deliver(s, peer.ID, peer.cert.Load(), f)
	}
}

// routed handles a packet that carries a route header: passes it on
// toward its destination, or fans a broadcast out, and takes what is
// for this node.
func (p *Plane) routed(s *scratch, v *View, from *Peer, payload []byte) {
	h, inner, err := topology.ParseRoute(payload)
	if err != nil || h.Src == p.self {
		p.counters.badRoute.Add(1)
		return
	}
	if h.Encap && h.Dst == p.self {
		// A broadcast's copy for this node, relayed by from because its
		// sender has no link here (topology.Routes.Fanout): taken as if
		// it had come over this link, once (no encapsulation inside).
		if ih, _, err := topology.ParseRoute(inner); err != nil || ih.Encap || !ih.Broadcast {
			p.counters.badRoute.Add(1)
			return
		}
		p.routed(s, v, from, inner)
		return
	}
	if (h.Flood || h.Broadcast) && from != nil && !from.broadcasts.Allow() {
		p.counters.rateLimited.Add(1)
		p.limits.rateLimited.Log("peer", from.ID.Short(), "src", h.Src.Short())
		return
	}
	if h.Flood {
		p.flooded(s, v, from, h, inner)
		return
	}
	if v.routes == nil {
		p.counters.noRoute.Add(1)
		return
	}
	var frame []byte // a broadcast frame, once its origin's signature checks
	if h.Broadcast {
		if h.Dst == p.self {
			// The arc to cover ends here: (self, self) would be the whole
			// ring, which only the originator sends.
			p.counters.badRoute.Add(1)
			return
		}
		if !h.Control {
			// A frame every node gets, passed on by others: signed by its
			// origin (send.go), checked before it goes further.
			if p.cfg.Directory.Peer(h.Src) == nil {
				p.holdFor(h.Src, payload)
				return
			}
			if frame = p.openBroadcast(h.Src, inner); frame == nil {
				return
			}
		}
		if h.TTL > 1 {
			next := h
			next.TTL--
			p.fanout(s, v, next, inner)
		}
	} else {
		if h.Dst != p.self && h.TTL > 1 && !v.routes.Linked(h.Dst) {
			if peer, pa := v.path(h.Dst); peer != nil {
				// Linked but left out of the routes (suspect, liveness.go).
				// Another way to the peer where the routes have one (a node
				// nearer it, or one announcing a link to it: the peer may
				// have stopped hearing only this node, e.g. after this
				// node's address changed behind its NAT); else the link is
				// still the way. A relayed packet takes the link: it goes
				// no further than the relay.
				if !h.Relay {
					around := h
					if next, verdict := v.routes.Forward(&around); verdict == topology.Forward {
						if np, npa := v.path(next); np != nil {
							p.sealRouted(s, np, npa, &around, inner)
							p.counters.routedForwarded.Add(1)
							return
						}
					}
				}
				h.TTL--
				h.Relay = false
				p.sealRouted(s, peer, pa, &h, inner)
				p.counters.routedForwarded.Add(1)
				return
			}
		}
		next, verdict := v.routes.Forward(&h)
		switch verdict {
		case topology.Forward:
			if peer, pa := v.path(next); peer != nil {
				p.sealRouted(s, peer, pa, &h, inner)
				p.counters.routedForwarded.Add(1)
			} else {
				p.counters.noRoute.Add(1)
			}
			return
		case topology.Expired:
			p.counters.expired.Add(1)
			return
		case topology.NoRoute:
			p.counters.noRoute.Add(1)
			return
		}
	}
	if h.Control && !h.Sealed {
		// A broadcast or flooded control message: its envelope is signed.
		p.counters.routedDelivered.Add(1)
		p.control(h.Src, inner, false, h.Broadcast, from)
		return
	}
	origin := p.cfg.Directory.Peer(h.Src)
	if origin == nil {
		p.holdFor(h.Src, payload)
		return
	}
	if !h.Sealed {
		if !h.Broadcast {
			// Unicast travels sealed end to end: one in the clear was
			// made up by a node on the way.
			p.counters.unsealed.Add(1)
			return
		}
		p.counters.routedDelivered.Add(1)
		p.deliver(s, h.Src, origin, frame)
		return
	}
	plain, flags, err := p.openE2E(s.next(p.maxPacket())[:0], h.Src, origin, inner)
	if err != nil {
		p.counters.e2eFailed.Add(1)
		return
	}
	p.counters.routedDelivered.Add(1)
	if flags&wire.FlagControl != 0 {
		p.control(h.Src, plain, false, false, from)
		return
	}
	if flags == wire.FlagTree {
		// From a tree neighbour this node has no link to (an adopted
		// edge): the e2e seal says who.
		p.treeFrame(s, v, h.Src, plain)
		return
	}
	p.deliver(s, h.Src, origin, plain)
}

// holdFor keeps a routed packet from an origin whose certificate is not
// known yet, and asks for the certificate.
func (p *Plane) holdFor(origin nodeid.ID, pkt []byte) {
	if !p.held.hold(origin, pkt, time.Now()) {
		p.counters.unknownOrigin.Add(1)
		p.limits.held.Log("origin", origin.Short())
	}
	p.askHello(origin)
}

// openBroadcast checks the envelope of a broadcast frame from origin and
// returns the frame (nil, counted, when it does not check).
func (p *Plane) openBroadcast(origin nodeid.ID, env []byte) []byte {
	msg, _, err := p.cfg.Directory.Open(origin, nodeid.ID{}, env)
	if err != nil || len(msg) == 0 || msg[0] != frameMark {
		p.counters.badOrigin.Add(1)
		p.log.Debug("broadcast frame refused", "origin", origin.Short(), "err", err)
		return nil
	}
	return msg[1:]
}

// deliver checks a frame that node from (certificate cert) sent us
// against what cert allows (origin.go), learns from it, and queues it for
// the TAP if it goes there. f lives in s until the drain.
func (p *Plane) deliver(s *scratch, from nodeid.ID, cert *identity.Peer, f []byte) {
	if len(f) < tap.EthHeaderLen || len(f) > p.maxFrame() {
		p.counters.badLength.Add(1)
		return
	}
	if cert == nil {
		p.counters.unknownOrigin.Add(1)
		return
	}
	pf := tap.Parse(f)
	proof, ok := allowedFrom(cert, &pf, &p.counters)
	if !ok {
		return
	}
	if f[6]&1 == 0 && !p.macs.learn([6]byte(f[6:12]), from, proof) {
		p.counters.spoofedMAC.Add(1)
		return
	}
	switch pf.Class {
	case tap.ClassARP, tap.ClassNDP:
		if p.neigh != nil {
			p.neigh.Remote(from, f)
		}
	case tap.ClassIGMP, tap.ClassMLD:
		// Never data: a node that sends them breaks the protocol.
		p.counters.noMember.Add(1)
		return
	case tap.ClassMulticast:
		if p.mcast != nil && !p.mcast.Deliver(&pf, f) {
			p.counters.noMember.Add(1)
			return
		}
	}
	s.frames = append(s.frames, f)
}
