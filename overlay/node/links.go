package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/signal"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// links is the node's peer-link machinery: the UDP socket, the link manager
// and the rendezvous client.
type links struct {
	sock   *nat.Socket
	mgr    *overlay.Manager
	client *signal.Client // nil when no rendezvous is configured
	watch  func(ctx context.Context)
}

func natSettings(cfg *config.Config, tapName string) nat.Settings {
	return nat.Settings{STUN: cfg.STUN, TURN: cfg.TURN, Port: cfg.ICE.Port, Interfaces: cfg.ICE.Interfaces, Exclude: []string{tapName}}
}

func (n *Node) openLinks(cfg *config.Config) error {
	st := natSettings(cfg, n.dev.Name())
	sig := &signalProxy{}
	mcfg := overlay.Config{
		Identity: n.id, CA: n.ca, Network: cfg.Network, NAT: st, Signal: sig,
		TAP: n.tapw, MTU: cfg.Tap.MTU, Log: n.log.With("sys", "links"),
		OnControl: n.mcast.onControl, OnLink: n.mcast.onLink, Snoop: n.snoopRemote,
		Ring: topology.RingConfig{Successors: cfg.Topology.Successors, Chords: cfg.Topology.Chords},
		OnDemand: topology.OnDemandConfig{
			Threshold: int64(cfg.Topology.OnDemand.Threshold),
			Idle:      cfg.Topology.OnDemand.Idle,
			MaxLinks:  cfg.Topology.OnDemand.MaxLinks,
		},
	}
	if len(cfg.Rendezvous) > 0 {
		sock, err := nat.Listen(st, n.log.With("sys", "nat"))
		if err != nil {
			return err
		}
		n.links.sock, n.links.watch, mcfg.Socket = sock, n.watchUnderlay, sock
		n.log.Info("links: UDP socket open", "addr", sock.LocalAddr().String(), "rendezvous", cfg.Rendezvous)
	}
	n.links.mgr = overlay.NewManager(mcfg)
	n.links.mgr.SetMulticast(n.mcast)
	if len(cfg.Rendezvous) == 0 {
		// Without a rendezvous no link can be made: no socket, no watcher.
		n.log.Warn("no rendezvous configured: this node will not link to others")
		return nil
	}
	mgr := n.links.mgr
	n.links.client = signal.NewClient(signal.ClientConfig{
		Servers: cfg.Rendezvous, Identity: n.id, CA: n.ca, Network: cfg.Network,
		OnWelcome: mgr.OnWelcome,
		OnPeers: func(ps []signal.PeerInfo) {
			out := make([]overlay.PeerInfo, len(ps))
			for i, p := range ps {
				out[i] = overlay.PeerInfo{ID: p.ID, Name: p.Name}
			}
			mgr.OnPeers(out)
		},
		OnRelay: mgr.OnRelay,
		Log:     n.log.With("sys", "signal"),
	})
	sig.c.Store(n.links.client)
	return nil
}

// run starts the socket reader, the manager and the rendezvous client, and
// stops them in order when ctx ends: the manager first (it says bye to peers
// through signaling), then signaling, then the socket.
func (l *links) run(ctx context.Context, errc chan<- error) (wait func()) {
	mctx, mcancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	mdone, cdone := make(chan struct{}), make(chan struct{})
	if l.sock != nil {
		go func() { errc <- l.sock.Serve(l.mgr.Receive) }()
		go l.watch(mctx)
	}
	go func() { l.mgr.Run(mctx); close(mdone) }()
	go func() {
		if l.client != nil {
			l.client.Run(cctx)
		}
		close(cdone)
	}()
	return func() {
		mcancel()
		<-mdone
		ccancel()
		<-cdone
		l.close()
	}
}

func (l *links) peers() control.Peers {
	p := l.mgr.Peers()
	if l.client != nil {
		p.Rendezvous = l.client.Server()
	}
	return p
}

// signalProxy lets the manager exist before the client (they refer to
// each other); with no rendezvous it is never connected.
type signalProxy struct{ c atomic.Pointer[signal.Client] }

func (s *signalProxy) Send(to nodeid.ID, payload []byte) error {
	if c := s.c.Load(); c != nil {
		return c.Send(to, payload)
	}
	return signal.ErrNotConnected
}

func (s *signalProxy) Connected() bool {
	c := s.c.Load()
	return c != nil && c.Connected()
}

// tapWriter serialises TAP writes (the socket reader, relay readers and
// the querier all write) and counts them.
type tapWriter struct {
	mu    sync.Mutex
	dev   tap.Device
	stats *tapStats
}

func (w *tapWriter) Write(frames [][]byte) (int, error) {
	w.mu.Lock()
	n, err := w.dev.Write(frames)
	w.mu.Unlock()
	w.stats.txFrames.Add(uint64(n))
	for _, f := range frames[:n] {
		w.stats.txBytes.Add(uint64(len(f)))
	}
	return n, err
}

// close closes the socket, if there is one; it is idempotent.
func (l *links) close() error {
	if l.sock == nil {
		return nil
	}
	return l.sock.Close()
}
