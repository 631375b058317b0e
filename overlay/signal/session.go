package signal

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// sendQueue is how many relay frames may wait for one node's writer. A
// node this far behind is not reading; its relays are dropped, never its
// presence (which has a slot of its own, below).
const sendQueue = 256

// Relays one node may send per second (and in a burst): link signaling is
// a few dozen messages per link set-up.
const (
	relayRate  = 200
	relayBurst = 400
)

// session is one node's verified connection on the server. Two goroutines
// serve it: the connection's own goroutine reads (serveSession), and
// writeLoop writes: the welcome, then the node's view of presence (the
// latest state: changes coalesce, never queue up behind relays), the
// revocation list when it changes, relayed frames, keepalive pings.
// Nothing else touches conn.
type session struct {
	raw      net.Conn // closed by stop: never blocks, unlike a TLS close_notify
	conn     net.Conn // the TLS connection (a pipe in the fuzz test)
	peer     PeerInfo
	notAfter time.Time     // the node's certificate expires then; the session ends
	out      chan []byte   // relay, error and pong frames for writeLoop; never closed
	wake     chan struct{} // presence or revocations changed (capacity 1)
	done     chan struct{} // closed by stop
	relays   *rate.Limiter // what the node may relay
	once     sync.Once

	mu      sync.Mutex // guards the presence and revocation state below
	full    bool       // send the whole list (welcome, or too many changes)
	joined  map[nodeid.ID]PeerInfo
	left    map[nodeid.ID]bool
	revoked []byte // a revocation list to send; nil when sent
}

// maxPending is how many presence changes a session coalesces before it
// sends the whole list instead.
const maxPending = 4 * PresencePart

func newSession(raw, conn net.Conn, peer PeerInfo, notAfter time.Time) *session {
	return &session{raw: raw, conn: conn, peer: peer, notAfter: notAfter,
		out: make(chan []byte, sendQueue), wake: make(chan struct{}, 1), done: make(chan struct{}),
		relays: rate.NewLimiter(relayRate, relayBurst), full: true,
		joined: map[nodeid.ID]PeerInfo{}, left: map[nodeid.ID]bool{}}
}

// stop ends the session; both loops see it and return.
func (ss *session) stop() {
	ss.once.Do(func() {
		close(ss.done)
		ss.raw.Close()
	})
}

// send queues a relay-class frame without blocking and reports whether it
// was queued; a full queue drops it.
func (ss *session) send(frame []byte) bool {
	select {
	case ss.out <- frame:
		return true
	default:
		return false
	}
}

func (ss *session) poke() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// changed records that peer joined (or left) for this node to hear.
func (ss *session) changed(peer PeerInfo, joined bool) {
	ss.mu.Lock()
	if !ss.full {
		delete(ss.joined, peer.ID)
		delete(ss.left, peer.ID)
		if joined {
			ss.joined[peer.ID] = peer
		} else {
			ss.left[peer.ID] = true
		}
		if len(ss.joined)+len(ss.left) > maxPending {
			ss.full, ss.joined, ss.left = true, map[nodeid.ID]PeerInfo{}, map[nodeid.ID]bool{}
		}
	}
	ss.mu.Unlock()
	ss.poke()
}

// setRevoked records a revocation list for this node to hear.
func (ss *session) setRevoked(pem []byte) {
	ss.mu.Lock()
	ss.revoked = pem
	ss.mu.Unlock()
	ss.poke()
}

var (
	pingFrame = mustEncode(&Message{Type: TypePing})
	pongFrame = mustEncode(&Message{Type: TypePong})
)

func mustEncode(m *Message) []byte {
	b, err := encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

// serveSession registers the node, reads its messages until the
// connection ends, and unregisters it.
func (s *Server) serveSession(ss *session) {
	log := s.log.With("peer", ss.peer.String(), "remote", ss.raw.RemoteAddr().String())
	var turn []iceserver.TURN
	if s.cfg.TURN != nil {
		turn = s.cfg.TURN(ss.peer)
	}
	welcome, err := encode(&Message{Type: TypeWelcome, You: &ss.peer, STUN: s.cfg.STUN, TURN: turn})
	if err != nil {
		log.Error("welcome not sent", "err", err)
		return
	}
	ss.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := ss.conn.Write(welcome); err != nil {
		log.Debug("welcome not sent", "err", err)
		return
	}
	s.wg.Add(1) // the handle goroutine holds one, so Close's Wait cannot have returned
	go s.writeLoop(ss)
	defer ss.stop()
	// The session lasts no longer than the node's certificate.
	expire := time.AfterFunc(time.Until(ss.notAfter), func() {
		log.Info("node certificate expired: closing its session", "not_after", ss.notAfter.Format(time.RFC3339))
		ss.raw.Close()
	})
	defer expire.Stop()
	if !s.register(ss, log) {
		return
	}
	defer s.unregister(ss, log)

	for {
		ss.raw.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		m, err := ReadMessage(ss.conn)
		if err != nil {
			if isFrameError(err) {
				s.malformed.Add(1)
				log.Warn("closing connection: bad frame", "err", err)
			} else {
				log.Debug("connection ended", "err", err)
			}
			return
		}
		switch m.Type {
		case TypeRelay:
			if !ss.relays.Allow() {
				s.limited.Add(1)
				s.dropped.Add(1)
				s.limitLog.Log("peer", ss.peer.String(), "limited_total", s.limited.Load())
				continue // a node flooding another gets nothing through, nor an answer
			}
			s.relay(ss, m, log)
		case TypePing:
			ss.send(pongFrame)
		case TypePong:
			// Reading it has reset the idle deadline; that is its purpose.
		default:
			log.Debug("ignoring message", "type", m.Type)
		}
	}
}

func (s *Server) register(ss *session, log *slog.Logger) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	// The newer connection wins: the old one is most likely a dead TCP
	// connection the node has already given up on (crash, NAT rebinding).
	old := s.nodes[ss.peer.ID]
	if old != nil {
		old.stop()
		s.replaced.Add(1)
		log.Info("node reconnected; replacing its old connection", "old_remote", old.raw.RemoteAddr().String())
	}
	s.nodes[ss.peer.ID] = ss
	if s.revokedPEM != nil {
		ss.setRevoked(s.revokedPEM)
	}
	ss.poke() // its full list
	if old == nil {
		for _, o := range s.nodes {
			if o != ss {
				o.changed(ss.peer, true)
			}
		}
	}
	log.Info("node joined", "nodes", len(s.nodes))
	return true
}

func (s *Server) unregister(ss *session, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A replaced session must not remove its successor.
	if s.nodes[ss.peer.ID] != ss {
		return
	}
	delete(s.nodes, ss.peer.ID)
	if !s.closed {
		for _, o := range s.nodes {
			o.changed(ss.peer, false)
		}
		log.Info("node left", "nodes", len(s.nodes))
	}
}

// relay forwards m's payload to m.To, stamped with the sender's verified ID
// whatever From the sender wrote.
func (s *Server) relay(from *session, m *Message, log *slog.Logger) {
	s.mu.Lock()
	to := s.nodes[m.To]
	s.mu.Unlock()
	reason := "peer not connected"
	if to != nil {
		frame, err := encode(&Message{Type: TypeRelay, From: from.peer.ID, To: m.To, Payload: m.Payload})
		switch {
		case err != nil:
			reason = "message too large" // From made a frame at the limit too big
		case to.send(frame):
			return
		default:
			reason = "peer not reading"
		}
	}
	s.dropped.Add(1)
	log.Debug("relay dropped", "to", m.To.Short(), "reason", reason)
	if frame, err := encode(&Message{Type: TypeError, To: m.To, Error: reason}); err == nil {
		from.send(frame)
	}
}

// writeLoop writes what the session has for its node: presence and
// revocation changes first, then queued frames, and a ping every
// PingInterval.
func (s *Server) writeLoop(ss *session) {
	defer s.wg.Done()
	defer ss.stop()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	write := func(frame []byte) bool {
		ss.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := ss.conn.Write(frame)
		return err == nil
	}
	for {
		select {
		case <-ss.done:
			return
		case <-ss.wake:
			for _, frame := range s.stateFrames(ss) {
				if !write(frame) {
					return
				}
			}
		case frame := <-ss.out:
			if !write(frame) {
				return
			}
		case <-ping.C:
			if !write(pingFrame) {
				return
			}
		}
	}
}

// stateFrames takes what changed for ss and encodes it: the revocation
// list, then the whole presence list or the changes, in parts.
func (s *Server) stateFrames(ss *session) [][]byte {
	ss.mu.Lock()
	full, joined, left, revoked := ss.full, ss.joined, ss.left, ss.revoked
	ss.full, ss.joined, ss.left, ss.revoked = false, map[nodeid.ID]PeerInfo{}, map[nodeid.ID]bool{}, nil
	ss.mu.Unlock()
	var frames [][]byte
	if revoked != nil {
		if f, err := encode(&Message{Type: TypeRevoked, Revoked: string(revoked)}); err == nil {
			frames = append(frames, f)
		} else {
			s.log.Error("revocation list not sent", "err", err)
		}
	}
	if full {
		return append(frames, s.fullList()...)
	}
	if len(joined)+len(left) == 0 {
		return frames
	}
	var m Message
	parts := 0
	flush := func(more bool) {
		m.Type, m.More = TypePresence, more
		if f, err := encode(&m); err == nil {
			frames = append(frames, f)
		}
		m, parts = Message{}, parts+1
	}
	for _, p := range joined {
		if m.Peers = append(m.Peers, p); len(m.Peers)+len(m.Left) == PresencePart {
			flush(true)
		}
	}
	for id := range left {
		if m.Left = append(m.Left, id); len(m.Peers)+len(m.Left) == PresencePart {
			flush(true)
		}
	}
	if len(m.Peers)+len(m.Left) > 0 || parts > 0 {
		flush(false) // the rest, or an empty last part after a full one
	}
	return frames
}

// fullList is the presence list in parts (the node leaves itself out).
func (s *Server) fullList() [][]byte {
	s.mu.Lock()
	peers := s.peersLocked()
	s.mu.Unlock()
	var frames [][]byte
	for first := true; first || len(peers) > 0; first = false {
		part := peers[:min(PresencePart, len(peers))]
		peers = peers[len(part):]
		f, err := encode(&Message{Type: TypePeers, Reset: first, More: len(peers) > 0, Peers: part})
		if err != nil {
			s.log.Error("presence list part not sent", "err", err)
			return frames
		}
		frames = append(frames, f)
	}
	return frames
}
