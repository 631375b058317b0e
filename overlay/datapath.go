package overlay

// The data path.
//
//	TAP reader ──Forward(batch)──► per frame: dst MAC ─► its node, else flood
//	                                 node linked?  seal (AES-GCM) for its link
//	                                 else          route header + seal for Routes.NextHop
//	                                 flood         one routed copy per Fanout branch
//	                               ──► socket WriteBatch (sendmmsg) ; relayed links: ice.Conn.Write
//
//	socket reader ──Receive(batch)──► per packet: link by source address
//	                                   data: open + replay check
//	                                     routed, not for us: re-seal for the next hop
//	                                     frame for us: learn src MAC ─► TAP Write (batch)
//	                                     control for us: control()
//	                                   DTLS: hand to the link's handshake
//	relay reader (one per link, only carries traffic on relayed paths) ──► same
//
// Forward runs only on the TAP reader goroutine and Receive only on the
// socket reader goroutine, so each owns its scratch buffers without locks;
// frames and packets handed in are borrowed until the call returns. The link
// view (snapshot, with the ring's Routes) and each link's path are immutable
// values swapped atomically by the manager's loop.

import (
	"errors"
	"net/netip"

	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/topology"
)

// snapshot is the data path's view of the links, rebuilt on every change.
type snapshot struct {
	byAddr map[netip.AddrPort]*Link // by the selected pair's remote address
	byID   map[nodeid.ID]*Link      // links that carry data, by peer
	up     []*Link                  // the same, as a list
	routes *topology.Routes         // the ring's routing view; nil: flood to every link
}

// link returns the path of the up link to id, if any.
func (s *snapshot) link(id nodeid.ID) (*Link, *path) {
	if l := s.byID[id]; l != nil {
		if p := l.path.Load(); p != nil {
			return l, p
		}
	}
	return nil, nil
}

// scratchSlots is how many packets a reader builds before it flushes; it
// flushes only between input items, so one item (a broadcast to many
// branches) may go over it.
const scratchSlots = 128

// scratch holds one goroutine's reusable buffers.
type scratch struct {
	bufs     [][]byte
	used     int
	pkts     []nat.Packet
	frames   [][]byte
	targets  []nodeid.ID
	branches []topology.Branch
	plain    []byte // route header + payload, before sealing
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

func (m *Manager) maxPacket() int { return m.cfg.MTU + 18 + topology.RouteHeaderLen + wire.Overhead }

// Forward sends frames read from the TAP to the nodes that should get them.
func (m *Manager) Forward(frames [][]byte) {
	snap := m.snap.Load()
	if len(snap.up) == 0 {
		return
	}
	s := &m.fwd
	for _, f := range frames {
		if len(f) < 14 {
			continue
		}
		if s.used >= scratchSlots {
			m.drain(s)
		}
		if f[0]&1 == 0 { // unicast destination
			if id, ok := m.macs.lookup([6]byte(f[0:6])); ok && m.toNode(s, snap, id, f) {
				continue
			}
		}
		action := Flood // unknown unicast, or no multicast router
		if f[0]&1 == 1 {
			if mc := m.multicast(); mc != nil {
				s.targets, action = mc.Route(f, s.targets[:0])
			}
		}
		switch action {
		case Flood:
			m.flood(s, snap, f, 0)
		case To:
			for _, id := range s.targets {
				m.toNode(s, snap, id, f)
			}
		}
	}
	m.drain(s)
}

// toNode sends a frame to node id: over its link, else routed through the
// ring. It reports false when there is no way (the caller may flood). The
// bytes count toward an on-demand link either way.
func (m *Manager) toNode(s *scratch, snap *snapshot, id nodeid.ID, frame []byte) bool {
	if l, p := snap.link(id); l != nil {
		m.od.Add(id, len(frame))
		m.seal(s, l, p, 0, frame)
		return true
	}
	l, p := m.nextHop(snap, id)
	if l == nil {
		return false
	}
	m.od.Add(id, len(frame))
	h := topology.Route{Src: m.self, Dst: id, TTL: topology.HopLimit}
	m.sealRouted(s, l, p, &h, frame)
	m.counters.routedSent.Add(1)
	return true
}

// nextHop is the up link to hand a packet for id to.
func (m *Manager) nextHop(snap *snapshot, id nodeid.ID) (*Link, *path) {
	if snap.routes == nil {
		return nil, nil
	}
	next, ok := snap.routes.NextHop(id)
	if !ok {
		m.counters.noRoute.Add(1)
		return nil, nil
	}
	return snap.link(next)
}

// flood sends a frame (or, with flags FlagControl, a control message) to
// every node: one copy per link when there is no ring yet, else a
// broadcast along the ring (topology.Fanout), which reaches each node once.
func (m *Manager) flood(s *scratch, snap *snapshot, payload []byte, flags byte) {
	if snap.routes == nil {
		for _, l := range snap.up {
			if p := l.path.Load(); p != nil {
				m.seal(s, l, p, flags, payload)
			}
		}
		return
	}
	self := m.self
	h := topology.Route{Src: self, Dst: self, TTL: topology.HopLimit, Broadcast: true, Control: flags&wire.FlagControl != 0}
	m.fanout(s, snap, h, payload)
}

// fanout sends broadcast h (its Dst the end of the arc to cover) on, one
// copy per branch.
func (m *Manager) fanout(s *scratch, snap *snapshot, h topology.Route, payload []byte) {
	s.branches = snap.routes.Fanout(h.Dst, s.branches[:0])
	for _, b := range s.branches {
		if l, p := snap.link(b.To); l != nil {
			h.Dst = b.Limit
			m.sealRouted(s, l, p, &h, payload)
		}
	}
}

func (m *Manager) sealRouted(s *scratch, l *Link, p *path, h *topology.Route, payload []byte) {
	var err error
	if s.plain, err = h.AppendBinary(s.plain[:0]); err != nil {
		m.counters.badRoute.Add(1)
		return
	}
	s.plain = append(s.plain, payload...)
	m.seal(s, l, p, wire.FlagRouted, s.plain)
}

func (m *Manager) seal(s *scratch, l *Link, p *path, flags byte, payload []byte) {
	pkt, err := p.sess.SealFlags(s.next(m.maxPacket())[:0], flags, payload)
	if err != nil {
		l.stats.dropped.Add(1)
		return
	}
	l.stats.txPackets.Add(1)
	l.stats.txBytes.Add(uint64(len(payload)))
	if p.relay {
		// Relayed: pion's TURN client owns that path.
		if _, err := p.conn.Write(pkt); err != nil {
			l.stats.dropped.Add(1)
		}
		return
	}
	s.pkts = append(s.pkts, nat.Packet{Data: pkt, Addr: p.remote})
}

// drain sends the packets built and writes the frames collected, then
// frees the scratch buffers for reuse.
func (m *Manager) drain(s *scratch) {
	if len(s.pkts) > 0 {
		if n, err := m.cfg.Socket.WriteBatch(s.pkts); err != nil {
			m.log.Debug("socket write", "sent", n, "of", len(s.pkts), "err", err)
		}
	}
	clear(s.pkts)
	s.pkts = s.pkts[:0]
	if len(s.frames) > 0 {
		m.tapMu.Lock()
		_, err := m.cfg.TAP.Write(s.frames)
		m.tapMu.Unlock()
		if err != nil {
			m.log.Debug("tap write", "err", err)
		}
	}
	clear(s.frames)
	s.frames, s.used = s.frames[:0], 0
}

// Receive takes a batch from the socket reader: data packets and DTLS
// records from peers (STUN never reaches here).
func (m *Manager) Receive(batch []nat.Packet) {
	snap := m.snap.Load()
	s := &m.rcv
	for _, pkt := range batch {
		l := snap.byAddr[pkt.Addr]
		if l == nil {
			m.counters.unknownSource.Add(1)
			continue
		}
		if s.used >= scratchSlots {
			m.drain(s)
		}
		if f := m.open(s, l, pkt.Data); f != nil {
			s.frames = append(s.frames, f)
		}
	}
	m.drain(s)
}

// open handles one packet from link l; it returns the frame to deliver, if any.
func (m *Manager) open(s *scratch, l *Link, pkt []byte) []byte {
	switch {
	case wire.IsData(pkt):
		p := l.path.Load()
		if p == nil {
			m.counters.noPath.Add(1)
			return nil
		}
		f, flags, err := p.sess.OpenFlags(s.next(m.maxPacket())[:0], pkt)
		if err != nil {
			l.stats.dropped.Add(1)
			if errors.Is(err, wire.ErrReplay) {
				m.counters.replayed.Add(1)
			} else {
				m.counters.authFailed.Add(1)
			}
			return nil
		}
		l.stats.rxPackets.Add(1)
		l.stats.rxBytes.Add(uint64(len(f)))
		switch {
		case flags&wire.FlagRouted != 0:
			return m.routed(s, f)
		case flags&wire.FlagControl != 0:
			m.control(l.peer, f, true)
			return nil
		}
		return m.frame(l.peer, f)
	case len(pkt) > 0 && pkt[0] >= 20 && pkt[0] <= 63: // DTLS (RFC 7983)
		if dc := l.route.Load(); dc != nil {
			dc.deliver(pkt)
		}
	default:
		m.counters.notData.Add(1)
	}
	return nil
}

// routed handles a packet that carries a route header: passes it on
// toward its destination, or fans a broadcast out, and returns the frame
// to deliver here, if any.
func (m *Manager) routed(s *scratch, payload []byte) []byte {
	h, inner, err := topology.ParseRoute(payload)
	if err != nil || h.Src == m.self {
		m.counters.badRoute.Add(1)
		return nil
	}
	snap := m.snap.Load()
	if snap.routes == nil {
		m.counters.noRoute.Add(1)
		return nil
	}
	if h.Broadcast {
		if h.TTL > 1 {
			next := h
			next.TTL--
			m.fanout(s, snap, next, inner)
		}
	} else {
		next, verdict := snap.routes.Forward(&h)
		switch verdict {
		case topology.Forward:
			if l, p := snap.link(next); l != nil {
				m.sealRouted(s, l, p, &h, inner)
				m.counters.routedForwarded.Add(1)
			} else {
				m.counters.noRoute.Add(1)
			}
			return nil
		case topology.Expired:
			m.counters.expired.Add(1)
			return nil
		case topology.NoRoute:
			m.counters.noRoute.Add(1)
			return nil
		}
	}
	m.counters.routedDelivered.Add(1)
	if h.Control {
		m.control(h.Src, inner, false)
		return nil
	}
	return m.frame(h.Src, inner)
}

// frame checks a frame that node from sent us, learns from it, and
// returns it if it goes to the TAP.
func (m *Manager) frame(from nodeid.ID, f []byte) []byte {
	if len(f) < 14 || len(f) > m.cfg.MTU+18 {
		m.counters.tooLong.Add(1)
		return nil
	}
	if f[6]&1 == 0 {
		m.macs.learn([6]byte(f[6:12]), from)
	}
	if m.cfg.Snoop != nil {
		if et := uint16(f[12])<<8 | uint16(f[13]); et == 0x0806 || et == 0x86dd || et == 0x8100 {
			m.cfg.Snoop(from, f)
		}
	}
	if f[0]&1 == 1 {
		if mc := m.multicast(); mc != nil && !mc.Deliver(f) {
			m.counters.noMember.Add(1)
			return nil
		}
	}
	return f
}

// relayReader reads what arrives through pion's ICE conn: on host and srflx
// paths nothing does (our socket gets it first); on relayed paths it is the
// only way in. It ends when the link closes its conn.
func (m *Manager) relayReader(l *Link, conn *ice.Conn) {
	var s scratch
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if f := m.open(&s, l, buf[:n]); f != nil {
			s.frames = append(s.frames, f)
		}
		m.drain(&s)
	}
}

// SendControl sends a control message to node id: over its link, else
// routed through the ring. It may be called from any goroutine; control
// messages are rare, so it uses scratch buffers of its own.
func (m *Manager) SendControl(id nodeid.ID, payload []byte) error {
	var s scratch
	snap := m.snap.Load()
	if l, p := snap.link(id); l != nil {
		m.seal(&s, l, p, wire.FlagControl, payload)
	} else if l, p := m.nextHop(snap, id); l != nil {
		h := topology.Route{Src: m.self, Dst: id, TTL: topology.HopLimit, Control: true}
		m.sealRouted(&s, l, p, &h, payload)
		m.counters.routedSent.Add(1)
	} else {
		return ErrNoRoute
	}
	m.drain(&s)
	return nil
}

// BroadcastControl sends a control message to every node of the overlay
// (along the ring; to every link before there is a ring).
func (m *Manager) BroadcastControl(payload []byte) {
	var s scratch
	m.flood(&s, m.snap.Load(), payload, wire.FlagControl)
	m.drain(&s)
}

// UpPeers lists the peers with a link up.
func (m *Manager) UpPeers() []nodeid.ID {
	snap := m.snap.Load()
	ids := make([]nodeid.ID, 0, len(snap.up))
	for _, l := range snap.up {
		ids = append(ids, l.peer)
	}
	return ids
}

// LearnMAC binds mac to node id, as if a frame from mac had come from it:
// the neighbour table learned from id's advertisement that the host lives
// there.
func (m *Manager) LearnMAC(mac [6]byte, id nodeid.ID) {
	m.macs.learn(mac, id)
}
