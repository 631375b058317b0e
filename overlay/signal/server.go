package signal

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Timing. A node answers a ping within one round trip, so a node silent for
// three ping intervals is gone (or behind a dead NAT mapping) and is dropped
// before its peers waste link attempts on it.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultIdleTimeout  = 45 * time.Second
	// handshakeTimeout bounds the TLS handshake (and, on the client, the
	// wait for the welcome), so a silent TCP connection cannot hold a slot.
	handshakeTimeout = 10 * time.Second
	// writeTimeout bounds one frame's write; a node that does not read for
	// that long is dropped rather than allowed to pin memory.
	writeTimeout = 10 * time.Second
)

// ServerConfig configures the rendezvous server.
type ServerConfig struct {
	Identity *identity.Identity // the server's own certificate and key
	CA       *x509.Certificate  // the network CA every node must be issued by
	Network  string             // the network name every node must carry
	STUN     []string           // STUN URLs handed out in every welcome
	// TURN returns the TURN credentials for one node's welcome; nil for none.
	// It runs on the node's connection goroutine, once per connection.
	TURN func(node PeerInfo) []iceserver.TURN
	Log  *slog.Logger // nil discards

	// PingInterval and IdleTimeout default (when 0) to DefaultPingInterval
	// and DefaultIdleTimeout; tests shorten them.
	PingInterval time.Duration
	IdleTimeout  time.Duration
}

// ServerStats are the server's counters since NewServer.
type ServerStats struct {
	Nodes     int    // nodes connected now
	Rejected  uint64 // connections whose handshake failed (no valid certificate, revoked, not TLS, too slow)
	Malformed uint64 // connections closed for a malformed or oversized frame
	Dropped   uint64 // relays not delivered: destination offline, its queue full, or over the sender's rate
	Replaced  uint64 // connections replaced by a newer one with the same node ID
	Limited   uint64 // relays over the sender's rate limit (also in Dropped)
	TooMany   uint64 // connections refused at once: too many handshakes under way, or from one address
}

// Bounds on connections: handshakes under way in all (a TLS handshake
// costs the server a signature), and connections from one address.
const (
	maxHandshakes = 128
	maxPerAddress = 16
)

// Server keeps the presence list of connected nodes and relays messages
// between them by node ID. It serves any number of listeners; Close ends
// them all, and every connection, and waits for its goroutines.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	rejected, malformed, dropped, replaced, limited, tooMany atomic.Uint64
	limitLog, tooManyLog                                     *limitlog.Logger
	wg                                                       sync.WaitGroup // one per accepted connection, one per session writer

	mu         sync.Mutex // guards the fields below
	closed     bool
	listeners  map[net.Listener]struct{}
	conns      map[net.Conn]struct{} // every accepted conn, handshaken or not, so Close can end it
	nodes      map[nodeid.ID]*session
	handshakes int            // handshakes under way
	perAddr    map[string]int // connections by remote IP
	revoked    *identity.Revocations
	revokedPEM []byte
}

// NewServer returns a server; it does nothing until Serve.
func NewServer(cfg ServerConfig) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("subsystem", "signal")
	return &Server{
		cfg:        cfg,
		log:        log,
		limitLog:   limitlog.New(log, slog.LevelWarn, "relays over a node's rate limit dropped", 0),
		tooManyLog: limitlog.New(log, slog.LevelWarn, "connections refused: too many handshakes under way or from one address", 0),
		listeners:  map[net.Listener]struct{}{},
		conns:      map[net.Conn]struct{}{},
		nodes:      map[nodeid.ID]*session{},
		perAddr:    map[string]int{},
	}
}

// Serve accepts connections on ln until Close, doing TLS on each. It
// closes ln before returning, and returns nil after Close; otherwise the
// listener's error (or ErrBadConfig).
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if s.cfg.Identity == nil || s.cfg.CA == nil || s.cfg.Network == "" {
		return fmt.Errorf("%w: server needs Identity, CA and Network", ErrBadConfig)
	}
	if s.cfg.Identity.Role != identity.RoleRendezvous {
		return fmt.Errorf("%w: certificate %q lacks the rendezvous role (issue it with ipopctl cert issue --rendezvous): nodes refuse such a server", ErrBadConfig, s.cfg.Identity.Name)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var pause time.Duration // after temporary Accept errors such as EMFILE, as net/http does
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", pause)
				time.Sleep(pause)
				continue
			}
			return fmt.Errorf("signal: accept: %w", err)
		}
		pause = 0
		host := remoteHost(c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		if s.handshakes >= maxHandshakes || s.perAddr[host] >= maxPerAddress {
			hs := s.handshakes
			s.mu.Unlock()
			s.tooMany.Add(1)
			s.tooManyLog.Log("remote", host, "handshakes", hs, "max_handshakes", maxHandshakes, "max_per_address", maxPerAddress)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.handshakes++
		s.perAddr[host]++
		s.wg.Add(1) // under mu, so it never races Close's Wait
		s.mu.Unlock()
		go s.handle(c, host)
	}
}

// Close stops every listener and connection and waits for the server's
// goroutines to end. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for ln := range s.listeners {
			ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Peers returns the connected nodes ordered by ID.
func (s *Server) Peers() []PeerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peersLocked()
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	n := len(s.nodes)
	s.mu.Unlock()
	return ServerStats{
		Nodes:     n,
		Rejected:  s.rejected.Load(),
		Malformed: s.malformed.Load(),
		Dropped:   s.dropped.Load(),
		Replaced:  s.replaced.Load(),
		Limited:   s.limited.Load(),
		TooMany:   s.tooMany.Load(),
	}
}

// SetRevocations takes a newer revocation list (its PEM and what it
// says): revoked nodes are cut off and refused from now on, and every
// node gets the list. An older or equal one is ignored.
func (s *Server) SetRevocations(pem []byte, r *identity.Revocations) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked != nil && r.Seq <= s.revoked.Seq {
		return
	}
	s.revoked, s.revokedPEM = r, pem
	for id, ss := range s.nodes {
		if r.Has(id) {
			s.log.Info("node revoked: closing its session", "peer", ss.peer.String())
			ss.stop()
			continue
		}
		ss.setRevoked(pem)
	}
}

func (s *Server) isRevoked(id nodeid.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked.Has(id)
}

// remoteHost is the IP a connection comes from.
func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// handle runs one accepted connection: handshake, then its session.
func (s *Server) handle(raw net.Conn, host string) {
	defer s.wg.Done()
	handshaking := true
	defer func() {
		raw.Close()
		s.mu.Lock()
		delete(s.conns, raw)
		if handshaking {
			s.handshakes--
		}
		if s.perAddr[host]--; s.perAddr[host] <= 0 {
			delete(s.perAddr, host)
		}
		s.mu.Unlock()
	}()
	var peer *identity.Peer
	tc := tls.Server(raw, tlsConfig(s.cfg.Identity, s.cfg.CA, s.cfg.Network, func(p *identity.Peer) error {
		if s.isRevoked(p.ID) {
			return fmt.Errorf("%s is revoked", p)
		}
		peer = p
		return nil
	}))
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	err := tc.Handshake()
	s.mu.Lock()
	s.handshakes--
	handshaking = false
	s.mu.Unlock()
	if err != nil || peer == nil {
		if s.isClosed() {
			return // cut short by Close, not rejected
		}
		// Debug only: whoever fails here is not of the network, and must
		// not be able to fill our log.
		s.rejected.Add(1)
		s.log.Debug("handshake rejected", "remote", raw.RemoteAddr().String(), "err", err)
		return
	}
	raw.SetDeadline(time.Time{})
	s.serveSession(newSession(raw, tc, peerInfo(peer), peer.NotAfter))
}

func (s *Server) peersLocked() []PeerInfo {
	peers := make([]PeerInfo, 0, len(s.nodes))
	for _, ss := range s.nodes {
		peers = append(peers, ss.peer)
	}
	slices.SortFunc(peers, func(a, b PeerInfo) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return peers
}

// isFrameError tells a bad frame (the peer's fault, counted) from the
// connection just ending.
func isFrameError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge)
}
