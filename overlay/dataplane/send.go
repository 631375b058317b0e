package dataplane

// Sealing and sending, shared by both directions and by control messages.
//
//	toNode(id):  linked?  seal(payload) for its link
//	             else     route header {self, id, HopLimit} + seal for Routes.Route(id)
//	                      (the next hop nearer id, else a relay that links id;
//	                      control messages with neither: flood.go)
//	flood:       ring?    one routed broadcast copy per Routes.Fanout branch
//	             else     seal for every up link
//	seal ─► scratch.pkts ... drain ─► Socket.WriteBatch (sendmmsg)
//	        relayed path: Path.Relay.Write at once, one packet
//
// A scratch belongs to one goroutine (a reader, or one SendControl call)
// and is passed down, never shared; packets built in it are sent at the
// next drain, which frees its buffers for reuse.

import (
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/topology"
)

// scratchSlots is how many packets a reader builds before it drains; it
// drains only between input items, so one item (a broadcast to many
// branches) may go over it.
const scratchSlots = 128

// scratch holds one goroutine's reusable buffers.
type scratch struct {
	bufs     [][]byte
	used     int
	pkts     []nat.Packet // to send at drain
	frames   [][]byte     // to write to the TAP at drain
	targets  []nodeid.ID
	branches []topology.Branch
	plain    []byte // route header + payload, before sealing
	e2e      []byte // a payload sealed end to end, before the route header
	encap    []byte // a broadcast's header + payload, to go inside a relayed packet
}

func (s *scratch) next(size int) []byte {
	if s.used == len(s.bufs) {
		s.bufs = append(s.bufs, make([]byte, size))
	}
	b := s.bufs[s.used]
	if cap(b) < size {
		b = make([]byte, size)
		s.bufs[s.used] = b
	}
	s.used++
	return b[:size]
}

// maxPacket is the longest frame plus everything sealing adds: what the
// scratch buffers are sized for. Control messages may be longer (a full
// membership state, a certificate in an envelope); sealing those grows
// the buffer, which they are rare enough to afford.
func (p *Plane) maxPacket() int {
	return p.maxFrame() + topology.RouteHeaderLen + e2eOverhead + wire.Overhead
}

// toNode sends a frame (flags 0) or control message (FlagControl) to node
// id: over its link, else routed through the ring. It reports false when
// there is no way (the caller may flood). Frames count toward an
// on-demand link either way.
func (p *Plane) toNode(s *scratch, v *View, id nodeid.ID, flags byte, payload []byte) bool {
	if peer, pa := v.path(id); peer != nil {
		p.countToward(id, flags, payload)
		p.seal(s, peer, pa, flags, payload)
		return true
	}
	peer, pa, relay := p.nextHop(v, id)
	if peer == nil {
		// Control messages get through a hole in the ring by flooding;
		// hellos do not (any other message carries the certificate, and
		// a hello to a node nobody reaches is likely to one that does
		// not exist).
		return flags&wire.FlagControl != 0 && !isHello(payload) && p.floodTo(s, v, id, payload)
	}
	// Routed: sealed end to end (e2e.go), which needs id's certificate.
	cert := p.cfg.Directory.Peer(id)
	if cert == nil || flags&wire.FlagControl != 0 && isHello(payload) {
		if cert == nil {
			p.askHello(id)
		}
		if flags&wire.FlagControl != 0 {
			// A control message is signed, and carries our certificate:
			// it goes as it is, so that the two ends learn each other.
			// Hellos always do: the other end may not know us, and
			// could not open what we sealed.
			p.counters.routedSent.Add(1)
			h := topology.Route{Src: p.self, Dst: id, TTL: topology.HopLimit, Control: true, Relay: relay}
			p.sealRouted(s, peer, pa, &h, payload)
			return true
		}
		if !p.outHeld.hold(id, append([]byte{flags}, payload...), time.Now()) {
			p.counters.noCert.Add(1)
			p.limits.outHeld.Log("to", id.Short())
		}
		return true // sent once the certificate is here
	}
	sealed, err := p.sealE2E(s.e2e[:0], id, cert, flags, payload)
	if err != nil {
		p.counters.e2eFailed.Add(1)
		return false
	}
	s.e2e = sealed
	p.countToward(id, flags, payload)
	h := topology.Route{Src: p.self, Dst: id, TTL: topology.HopLimit, Relay: relay, Sealed: true}
	p.sealRouted(s, peer, pa, &h, sealed)
	p.counters.routedSent.Add(1)
	return true
}

func (p *Plane) countToward(id nodeid.ID, flags byte, payload []byte) {
	if flags == 0 && p.cfg.OnDemand != nil {
		p.cfg.OnDemand.Add(id, len(payload))
	}
}

// nextHop is the up link to hand a packet for id to (a relay when no
// link is nearer id: see topology.Routes.Route).
func (p *Plane) nextHop(v *View, id nodeid.ID) (*Peer, *Path, bool) {
	if v.routes == nil {
		return nil, nil, false
	}
	next, relay, ok := v.routes.Route(id)
	if !ok {
		p.counters.noRoute.Add(1)
		return nil, nil, false
	}
	peer, pa := v.path(next)
	return peer, pa, relay
}

// flood sends a frame (or, with flags FlagControl, a control message) to
// every node: one copy per link when there is no ring yet, else a
// broadcast along the ring (topology.Fanout), which reaches each node once.
func (p *Plane) flood(s *scratch, v *View, payload []byte, flags byte) {
	if v.routes == nil {
		for _, peer := range v.up {
			if pa := peer.path.Load(); pa != nil {
				p.seal(s, peer, pa, flags, payload)
			}
		}
		return
	}
	h := topology.Route{Src: p.self, Dst: p.self, TTL: topology.HopLimit, Broadcast: true, Control: flags&wire.FlagControl != 0}
	if !h.Control {
		// Other nodes pass it on: it goes signed, so that none of them
		// can make one up in this node's name (outside.go).
		env, err := p.cfg.Signer.Seal(nodeid.ID{}, append([]byte{frameMark}, payload...), false)
		if err != nil {
			p.counters.e2eFailed.Add(1)
			return
		}
		payload = env
	}
	p.fanout(s, v, h, payload)
}

// frameMark is the first byte of a signed broadcast frame's message: no
// control kind, so that neither can pass for the other.
const frameMark = 0

// fanout sends broadcast h (its Dst the end of the arc to cover) on, one
// copy per branch.
func (p *Plane) fanout(s *scratch, v *View, h topology.Route, payload []byte) {
	s.branches = v.routes.Fanout(h.Dst, s.branches[:0])
	for _, b := range s.branches {
		h.Dst = b.Limit
		if b.Via.IsZero() {
			if peer, pa := v.path(b.To); peer != nil {
				p.sealRouted(s, peer, pa, &h, payload)
			}
			continue
		}
		// To a node of this node's own arc that it has no link to,
		// through a node that has: the copy goes inside a relayed
		// packet, which b.Via passes only over its link to b.To.
		peer, pa := v.path(b.Via)
		if peer == nil {
			continue
		}
		var err error
		if s.encap, err = h.AppendBinary(s.encap[:0]); err != nil {
			p.counters.badRoute.Add(1)
			continue
		}
		s.encap = append(s.encap, payload...)
		outer := topology.Route{Src: p.self, Dst: b.To, TTL: 2, Relay: true, Encap: true}
		p.sealRouted(s, peer, pa, &outer, s.encap)
		p.counters.relayedBroadcasts.Add(1)
	}
}

func (p *Plane) sealRouted(s *scratch, peer *Peer, pa *Path, h *topology.Route, payload []byte) {
	var err error
	if s.plain, err = h.AppendBinary(s.plain[:0]); err != nil {
		p.counters.badRoute.Add(1)
		return
	}
	s.plain = append(s.plain, payload...)
	p.seal(s, peer, pa, wire.FlagRouted, s.plain)
}

func (p *Plane) seal(s *scratch, peer *Peer, pa *Path, flags byte, payload []byte) {
	pkt, err := pa.Keys.Seal(s.next(p.maxPacket())[:0], flags, payload)
	if err != nil {
		peer.Stats.Dropped.Add(1)
		return
	}
	peer.Stats.TxPackets.Add(1)
	peer.Stats.TxBytes.Add(uint64(len(payload)))
	if len(payload) > 0 && flags&wire.FlagProbe == 0 { // probes and their answers do not keep a link busy
		if now := p.clock.Load(); peer.sent.Load() != now {
			peer.sent.Store(now) // the link carries traffic (liveness.go)
		}
	}
	if pa.Relay != nil {
		// Relayed: pion's TURN client owns that path.
		if _, err := pa.Relay.Write(pkt); err != nil {
			peer.Stats.Dropped.Add(1)
		}
		return
	}
	s.pkts = append(s.pkts, nat.Packet{Data: pkt, Addr: pa.Remote})
}

// drain sends the packets built and writes the frames collected, then
// frees the scratch buffers for reuse.
func (p *Plane) drain(s *scratch) {
	if len(s.pkts) > 0 && p.cfg.Socket != nil {
		if n, err := p.cfg.Socket.WriteBatch(s.pkts); err != nil {
			p.log.Debug("socket write", "sent", n, "of", len(s.pkts), "err", err)
		}
	}
	clear(s.pkts)
	s.pkts = s.pkts[:0]
	if len(s.frames) > 0 {
		if _, err := p.WriteTAP(s.frames); err != nil {
			p.log.Debug("tap write", "err", err)
		}
	}
	clear(s.frames)
	s.frames, s.used = s.frames[:0], 0
}
