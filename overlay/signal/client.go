package signal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Reconnect backoff defaults: quick enough that a rendezvous restart costs
// a node about a second, slow enough at the top that a long outage costs the
// server one handshake per node every half minute.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// ClientConfig configures a node's signaling client. The callbacks may be
// nil; see Client for when they run.
type ClientConfig struct {
	Servers  []string // host:port, tried in this order on every (re)connect
	Identity *identity.Identity
	CA       *x509.Certificate
	Network  string

	OnWelcome func(stun []string, turn []iceserver.TURN) // on each (re)connect, before any OnPeers
	OnPeers   func(peers []PeerInfo)                     // full list, self excluded
	OnRelay   func(from nodeid.ID, payload []byte)
	OnState   func(connected bool)
	// OnRevoked gets the revocation list the server has (PEM, not yet
	// checked: the caller checks it against the CA).
	OnRevoked func(pem []byte)

	Log    *slog.Logger                                                      // nil discards
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error) // nil = net.Dialer

	// Zero values mean DefaultIdleTimeout, DefaultMinBackoff and
	// DefaultMaxBackoff; tests shorten them.
	IdleTimeout            time.Duration
	MinBackoff, MaxBackoff time.Duration
}

// Client keeps one node connected to the first reachable rendezvous server.
//
// All callbacks run on Run's goroutine, one at a time, in the order the
// server sent the messages: OnState(true) and OnWelcome after each connect,
// then OnPeers and OnRelay as messages arrive, then OnState(false) when the
// connection ends (also when Run returns). A slow callback delays reading,
// not other nodes; the server drops this node if it stops reading for long.
// Send and the getters may be called from any goroutine, callbacks included.
type Client struct {
	cfg     ClientConfig
	log     *slog.Logger
	running atomic.Bool

	mu  sync.Mutex  // guards cur
	cur *clientConn // nil while disconnected
}

// clientConn is one established connection. The Run goroutine reads it;
// writeLoop is the only writer.
type clientConn struct {
	addr     string
	server   PeerInfo
	notAfter time.Time // the server's certificate expires then; the connection ends
	raw      net.Conn
	conn     *tls.Conn
	out      chan []byte   // complete frames; never closed
	done     chan struct{} // closed by stop
	once     sync.Once
}

func (cc *clientConn) stop() {
	cc.once.Do(func() {
		close(cc.done)
		cc.raw.Close()
	})
}

// NewClient returns a client; it does nothing until Run.
func NewClient(cfg ClientConfig) *Client {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Dialer == nil {
		cfg.Dialer = (&net.Dialer{}).DialContext
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log.With("subsystem", "signal")}
}

// Connected reports whether the client has a server that welcomed it.
func (c *Client) Connected() bool { return c.current() != nil }

// Server returns the address of the connected server, "" if none.
func (c *Client) Server() string {
	if cc := c.current(); cc != nil {
		return cc.addr
	}
	return ""
}

// LocalAddrGone ends the connection to the server if the local address
// it leaves from is no longer one of this host's (have reports which are),
// so that Run dials again at once from an address that works. Without
// it the session would hang on until its read deadline (IdleTimeout) and
// the node would have no signaling meanwhile. It reports whether it did.
func (c *Client) LocalAddrGone(have func(netip.Addr) bool) bool {
	cc := c.current()
	if cc == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(cc.raw.LocalAddr().String())
	if err != nil || have(ap.Addr().Unmap().WithZone("")) {
		return false
	}
	c.log.Warn("the address of the rendezvous session is gone; reconnecting", "server", cc.addr, "local", ap.Addr())
	cc.stop()
	return true
}

func (c *Client) current() *clientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Send relays payload, which must be a JSON value, to node to through the
// server. It queues and returns at once: ErrNotConnected when there is no
// server, ErrQueueFull when the server is not reading, ErrMalformed or
// ErrTooLarge for a payload that cannot be sent. Delivery is best effort;
// a peer that is offline is reported by the server and logged at debug.
func (c *Client) Send(to nodeid.ID, payload []byte) error {
	cc := c.current()
	if cc == nil {
		return ErrNotConnected
	}
	frame, err := encode(&Message{Type: TypeRelay, To: to, Payload: payload})
	if err != nil {
		return fmt.Errorf("signal: relay to %s: %w", to.Short(), err)
	}
	select {
	case cc.out <- frame:
		return nil
	case <-cc.done:
		return ErrNotConnected
	default:
		return ErrQueueFull
	}
}

// Run connects, serves the connection, and reconnects with exponential
// backoff and jitter, until ctx ends; then it closes the connection, waits
// for its goroutines and returns nil. It returns an error at once only for
// a config that can never work (ErrBadConfig) or a second Run (ErrRunning).
func (c *Client) Run(ctx context.Context) error {
	if len(c.cfg.Servers) == 0 || c.cfg.Identity == nil || c.cfg.CA == nil || c.cfg.Network == "" {
		return fmt.Errorf("%w: client needs Servers, Identity, CA and Network", ErrBadConfig)
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)

	backoff := c.cfg.MinBackoff
	quiet := false // after one warning, further failed rounds log at debug
	for ctx.Err() == nil {
		cc, welcome, err := c.connect(ctx)
		switch {
		case err == nil:
			c.serve(ctx, cc, welcome)
			backoff, quiet = c.cfg.MinBackoff, false
		case ctx.Err() != nil:
		case !quiet:
			c.log.Warn("no rendezvous server reachable; retrying with backoff", "err", err)
			quiet = true
		default:
			c.log.Debug("no rendezvous server reachable", "err", err, "backoff", backoff)
		}
		// Half fixed, half random: nodes that lost the same server do not
		// all come back in the same instant.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
	return nil
}

// connect tries each server in order and returns the first that completes
// the handshake and sends its welcome. With TLS 1.3 the server checks our
// certificate after our side of the handshake is done, so a rejection only
// shows as the welcome read failing; either way we move on.
func (c *Client) connect(ctx context.Context) (*clientConn, *Message, error) {
	var errs []error
	for _, addr := range c.cfg.Servers {
		cc, welcome, err := c.dial(ctx, addr)
		if err == nil {
			return cc, welcome, nil
		}
		c.log.Debug("rendezvous attempt failed", "server", addr, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, errors.Join(errs...)
}

func (c *Client) dial(ctx context.Context, addr string) (*clientConn, *Message, error) {
	// One deadline and one cancel for dial, handshake and welcome alike.
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	raw, err := c.cfg.Dialer(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	unhook := context.AfterFunc(dctx, func() { raw.Close() })
	var server *identity.Peer
	tc := tls.Client(raw, tlsConfig(c.cfg.Identity, c.cfg.CA, c.cfg.Network, func(p *identity.Peer) error {
		if p.Role != identity.RoleRendezvous {
			return fmt.Errorf("%w: %s is not a rendezvous (its certificate lacks the role)", ErrNotRendezvous, p)
		}
		server = p
		return nil
	}))
	m, err := c.handshake(tc)
	if !unhook() && err == nil {
		err = dctx.Err() // the timer fired just as we finished
	}
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	cc := &clientConn{addr: addr, server: peerInfo(server), notAfter: server.NotAfter, raw: raw, conn: tc,
		out: make(chan []byte, sendQueue), done: make(chan struct{})}
	return cc, m, nil
}

func (c *Client) handshake(tc *tls.Conn) (*Message, error) {
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	m, err := ReadMessage(tc)
	if err != nil {
		return nil, err
	}
	if m.Type != TypeWelcome {
		return nil, fmt.Errorf("%w: %q before welcome", ErrUnexpected, m.Type)
	}
	return m, nil
}
