package overlay

// The data path.
//
//	TAP reader ──Forward(batch)──► per frame: dst MAC ─► known link, else every up link
//	                                 seal (AES-GCM) into Forward's scratch buffers
//	                               ──► socket WriteBatch (sendmmsg) ; relayed links: ice.Conn.Write
//
//	socket reader ──Receive(batch)──► per packet: link by source address
//	                                   data: open + replay check ─► learn src MAC ─► TAP Write (batch)
//	                                   DTLS: hand to the link's handshake
//	relay reader (one per link, only carries traffic on relayed paths) ──► same, one packet at a time
//
// Forward runs only on the TAP reader goroutine and Receive only on the
// socket reader goroutine, so each owns its scratch buffers without locks;
// frames and packets handed in are borrowed until the call returns. The link
// view (snapshot) and each link's path are immutable values swapped
// atomically by the manager's loop.

import (
	"errors"
	"net/netip"

	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/wire"
)

// snapshot is the data path's view of the links, rebuilt on every change.
type snapshot struct {
	byAddr map[netip.AddrPort]*Link  // by the selected pair's remote address
	byID   map[identity.NodeID]*Link // links that carry data, by peer
	up     []*Link                   // the same, for flooding
}

// scratchSlots bounds the packets one Forward call builds before it flushes.
const scratchSlots = 128

// scratch holds one goroutine's reusable buffers.
type scratch struct {
	bufs    [][]byte
	used    int
	pkts    []nat.Packet
	frames  [][]byte
	targets []identity.NodeID
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

func (m *Manager) maxPacket() int { return m.cfg.MTU + 18 + wire.Overhead }

// Forward sends frames read from the TAP to the links that should get them.
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
		if f[0]&1 == 0 { // unicast destination
			if l := m.macs.lookup([6]byte(f[0:6])); l != nil {
				if p := l.path.Load(); p != nil {
					m.seal(s, l, p, f)
					continue
				}
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
			for _, l := range snap.up {
				if p := l.path.Load(); p != nil {
					m.seal(s, l, p, f)
				}
			}
		case To:
			for _, id := range s.targets {
				if l := snap.byID[id]; l != nil {
					if p := l.path.Load(); p != nil {
						m.seal(s, l, p, f)
					}
				}
			}
		}
	}
	m.flush(s)
}

func (m *Manager) seal(s *scratch, l *Link, p *path, frame []byte) {
	if s.used == scratchSlots {
		m.flush(s)
	}
	pkt, err := p.sess.Seal(s.next(m.maxPacket())[:0], frame)
	if err != nil {
		l.stats.dropped.Add(1)
		return
	}
	l.stats.txPackets.Add(1)
	l.stats.txBytes.Add(uint64(len(frame)))
	if p.relay {
		// Relayed: pion's TURN client owns that path.
		if _, err := p.conn.Write(pkt); err != nil {
			l.stats.dropped.Add(1)
		}
		return
	}
	s.pkts = append(s.pkts, nat.Packet{Data: pkt, Addr: p.remote})
}

func (m *Manager) flush(s *scratch) {
	if len(s.pkts) > 0 {
		if n, err := m.cfg.Socket.WriteBatch(s.pkts); err != nil {
			m.log.Debug("socket write", "sent", n, "of", len(s.pkts), "err", err)
		}
	}
	clear(s.pkts)
	s.pkts, s.used = s.pkts[:0], 0
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
		if f := m.open(s, l, pkt.Data); f != nil {
			s.frames = append(s.frames, f)
		}
	}
	m.writeTAP(s)
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
		if flags&wire.FlagControl != 0 {
			if m.cfg.OnControl != nil {
				m.cfg.OnControl(l.peer, append([]byte(nil), f...))
			}
			return nil
		}
		if len(f) < 14 || len(f) > m.cfg.MTU+18 {
			m.counters.tooLong.Add(1)
			return nil
		}
		l.stats.rxPackets.Add(1)
		l.stats.rxBytes.Add(uint64(len(f)))
		if f[6]&1 == 0 {
			m.macs.learn([6]byte(f[6:12]), l)
		}
		if m.cfg.Snoop != nil {
			if et := uint16(f[12])<<8 | uint16(f[13]); et == 0x0806 || et == 0x86dd || et == 0x8100 {
				m.cfg.Snoop(l.peer, f)
			}
		}
		if f[0]&1 == 1 {
			if mc := m.multicast(); mc != nil && !mc.Deliver(f) {
				m.counters.noMember.Add(1)
				return nil
			}
		}
		return f
	case len(pkt) > 0 && pkt[0] >= 20 && pkt[0] <= 63: // DTLS (RFC 7983)
		if dc := l.route.Load(); dc != nil {
			dc.deliver(pkt)
		}
	default:
		m.counters.notData.Add(1)
	}
	return nil
}

func (m *Manager) writeTAP(s *scratch) {
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
		m.writeTAP(&s)
	}
}

// SendControl seals a control message for peer and sends it. It may be
// called from any goroutine; control messages are rare, so it allocates.
func (m *Manager) SendControl(peer identity.NodeID, payload []byte) error {
	l := m.snap.Load().byID[peer]
	if l == nil {
		return ErrNoLink
	}
	p := l.path.Load()
	if p == nil {
		return ErrNoLink
	}
	pkt, err := p.sess.SealFlags(make([]byte, 0, len(payload)+wire.Overhead), wire.FlagControl, payload)
	if err != nil {
		return err
	}
	if p.relay {
		_, err = p.conn.Write(pkt)
		return err
	}
	_, err = m.cfg.Socket.WriteBatch([]nat.Packet{{Data: pkt, Addr: p.remote}})
	return err
}

// UpPeers lists the peers with a link up.
func (m *Manager) UpPeers() []identity.NodeID {
	snap := m.snap.Load()
	ids := make([]identity.NodeID, 0, len(snap.up))
	for _, l := range snap.up {
		ids = append(ids, l.peer)
	}
	return ids
}

// LearnMAC binds mac to the link to peer, as if a frame from mac had come
// over it: the neighbour table learned from peer's advertisement that the
// host lives there. It does nothing when no link to peer is up.
func (m *Manager) LearnMAC(mac [6]byte, peer identity.NodeID) {
	if l := m.snap.Load().byID[peer]; l != nil {
		m.macs.learn(mac, l)
	}
}
