package node

import (
	"context"
	"maps"
	"sync/atomic"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/signal"
	"github.com/ipopd/ipopd/topology"
)

// links is the node's peer-link machinery: the UDP socket, link control
// and the rendezvous client.
type links struct {
	sock   *nat.Socket // nil when no rendezvous is configured
	mgr    *overlay.Manager
	client *signal.Client // nil when no rendezvous is configured
	watch  func(ctx context.Context)
}

func natSettings(cfg *config.Config, tapName string) nat.Settings {
	return nat.Settings{STUN: cfg.STUN, TURN: cfg.TURN, Port: cfg.ICE.Port, Interfaces: cfg.ICE.Interfaces, Exclude: []string{tapName}}
}

// openSocket opens the node's UDP socket when a rendezvous is configured:
// without one no link can be made, so there is no socket and no watcher.
func (n *Node) openSocket(cfg *config.Config) error {
	if len(cfg.Rendezvous) == 0 {
		n.log.Warn("no rendezvous configured: this node will not link to others")
		return nil
	}
	sock, err := nat.Listen(natSettings(cfg, n.dev.Name()), nil, n.log.With("sys", "nat"))
	if err != nil {
		return err
	}
	st := natSettings(cfg, n.dev.Name())
	n.links.sock, n.links.watch = sock, func(ctx context.Context) { n.watchUnderlay(ctx, st) }
	n.log.Info("links: UDP socket open", "addr", sock.LocalAddr().String(), "rendezvous", cfg.Rendezvous)
	return nil
}

// openLinks makes link control and, with a rendezvous, its client.
func (n *Node) openLinks(cfg *config.Config, od *topology.OnDemand) {
	sig := &signalProxy{}
	mcfg := overlay.Config{
		Identity: n.id, CA: n.ca, Network: cfg.Network, NAT: natSettings(cfg, n.dev.Name()), Signal: sig,
		Data: n.data, Log: n.log.With("sys", "links"), OnDemand: od, RekeyInterval: cfg.Trust.RekeyInterval,
		Ring:   topology.RingConfig{Successors: cfg.Topology.Successors, Chords: cfg.Topology.Chords},
		OnLink: n.onLink,
	}
	if n.links.sock != nil {
		mcfg.Socket = n.links.sock
	}
	n.links.mgr = overlay.NewManager(mcfg)
	if n.links.sock == nil {
		return
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
		OnRelay:   mgr.OnRelay,
		OnRevoked: n.onRevoked,
		Log:       n.log.With("sys", "signal"),
	})
	sig.c.Store(n.links.client)
}

// onLink tells the planes of a link that came or went (link control's
// loop; they only post).
func (n *Node) onLink(peer nodeid.ID, ev overlay.LinkEvent) {
	switch ev {
	case overlay.LinkUp:
		n.mcast.LinkUp(peer)
		n.neigh.LinkUp(peer)
	case overlay.LinkLost:
		n.mcast.LinkLost(peer)
		n.neigh.LinkLost(peer)
	}
}

// run starts the socket reader, link control and the rendezvous client,
// and stops them in order: link control first (it says bye to peers
// through signaling), then signaling, then the socket.
func (l *links) run(data *dataplane.Plane, errc chan<- error) (wait func()) {
	mctx, mcancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	mdone, cdone := make(chan struct{}), make(chan struct{})
	if l.sock != nil {
		go func() { errc <- l.sock.Serve(data.NewReceiver().Receive) }()
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

func (n *Node) peers() control.Peers {
	p := n.links.mgr.Peers()
	p.Drops = n.drops()
	if n.links.client != nil {
		p.Rendezvous = n.links.client.Server()
	}
	return p
}

// drops are every drop counter of the node by reason: the data plane's,
// link control's and the control planes'.
func (n *Node) drops() map[string]uint64 {
	d := n.links.mgr.Drops()
	maps.Copy(d, n.mcast.Drops())
	d["advert_not_in_certificate"] = n.neigh.Refused()
	return d
}

// signalProxy lets link control exist before the client (they refer to
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

// close closes the socket, if there is one; it is idempotent.
func (l *links) close() error {
	if l.sock == nil {
		return nil
	}
	return l.sock.Close()
}
