package signal

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// sendQueue is how many frames may wait for one node's writer. Presence
// lists and relays are small and bursty; a node this far behind is not
// reading.
const sendQueue = 256

// session is one node's verified connection on the server. Two goroutines
// serve it: the connection's own goroutine reads (serveSession), and
// writeLoop writes frames queued by send, plus the keepalive pings. Nothing
// else touches conn.
type session struct {
	raw  net.Conn // closed by stop: never blocks, unlike a TLS close_notify
	conn *tls.Conn
	peer PeerInfo
	out  chan []byte   // complete frames for writeLoop; never closed
	done chan struct{} // closed by stop
	once sync.Once
}

func newSession(raw net.Conn, conn *tls.Conn, peer PeerInfo) *session {
	return &session{raw: raw, conn: conn, peer: peer, out: make(chan []byte, sendQueue), done: make(chan struct{})}
}

// stop ends the session; both loops see it and return.
func (ss *session) stop() {
	ss.once.Do(func() {
		close(ss.done)
		ss.raw.Close()
	})
}

// send queues frame without blocking and reports whether it was queued.
// When the queue is full, a state frame (welcome, presence) stops the
// session, because a node that missed one would act on a stale list; a
// relay is dropped instead, so one node flooding another cannot get it
// disconnected.
func (ss *session) send(frame []byte, state bool) bool {
	select {
	case ss.out <- frame:
		return true
	case <-ss.done:
		return false
	default:
		if state {
			ss.stop()
		}
		return false
	}
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
	s.wg.Add(1) // the handle goroutine holds one, so Close's Wait cannot have returned
	go s.writeLoop(ss)
	defer ss.stop()
	if !s.register(ss, welcome, log) {
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
			s.relay(ss, m, log)
		case TypePing:
			ss.send(pongFrame, false)
		case TypePong:
			// Reading it has reset the idle deadline; that is its purpose.
		default:
			log.Debug("ignoring message", "type", m.Type)
		}
	}
}

func (s *Server) register(ss *session, welcome []byte, log *slog.Logger) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	// The newer connection wins: the old one is most likely a dead TCP
	// connection the node has already given up on (crash, NAT rebinding).
	if old := s.nodes[ss.peer.ID]; old != nil {
		old.stop()
		s.replaced.Add(1)
		log.Info("node reconnected; replacing its old connection", "old_remote", old.raw.RemoteAddr().String())
	}
	s.nodes[ss.peer.ID] = ss
	ss.send(welcome, true)
	s.broadcastLocked()
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
		s.broadcastLocked()
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
		case to.send(frame, false):
			return
		default:
			reason = "peer not reading"
		}
	}
	s.dropped.Add(1)
	log.Debug("relay dropped", "to", m.To.Short(), "reason", reason)
	if frame, err := encode(&Message{Type: TypeError, To: m.To, Error: reason}); err == nil {
		from.send(frame, false)
	}
}

// writeLoop writes queued frames and a ping every PingInterval.
func (s *Server) writeLoop(ss *session) {
	defer s.wg.Done()
	defer ss.stop()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		var frame []byte
		select {
		case <-ss.done:
			return
		case frame = <-ss.out:
		case <-ping.C:
			frame = pingFrame
		}
		ss.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := ss.conn.Write(frame); err != nil {
			return
		}
	}
}
