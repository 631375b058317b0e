// Package node wires one ipopd node together: identity, TAP, the data
// plane and its readers, link control, the multicast and neighbour planes,
// the control API and metrics. It is the one place (besides cmd/) that
// imports across subsystems; each subsystem stays usable on its own.
//
// Goroutines of a running node, and what each owns:
//
//	TAP reader       dataplane.ReadTAP: the inside path, its batch and scratch
//	socket reader    nat.Socket's reader, then dataplane.Receiver: the outside path
//	relay readers    one per relayed link (dataplane.ReadRelay), started by link control
//	link control     overlay.Manager.Run: links, signaling, ring; publishes the data plane's view
//	multicast plane  mcast.Plane.Run: querier, membership table and advertiser
//	neighbour plane  neigh.Plane.Run: host adverts, neighbour and MAC expiry
//	rendezvous       signal.Client.Run (when configured), posting to link control
//	underlay watcher netlink events, asking link control to restart links
//	control API      HTTP on the unix socket; metrics on metrics.listen
//	pion             agents' own goroutines, posting to link control
package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/mcast"
	"github.com/ipopd/ipopd/overlay/neigh"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// Options are the parts of a node that are not config: what cmd/ipopd or a
// test injects.
type Options struct {
	Version string
	Log     *slog.Logger
	// Level is the handler level that SIGHUP reloads set; may be nil.
	Level *slog.LevelVar
	// OpenTAP creates the TAP; nil means tap.Open (tests pass a taptest fake).
	OpenTAP func(tap.Config) (tap.Device, error)
	// Now is the clock for certificate checks; nil means time.Now.
	Now func() time.Time
}

// Node is a running ipopd node. Its fields are set by New and read-only
// afterwards, except cfg (swapped whole on reload).
type Node struct {
	opts    Options
	log     *slog.Logger
	cfg     atomic.Pointer[config.Config]
	id      *identity.Identity
	ca      *x509.Certificate
	dev     tap.Device
	data    *dataplane.Plane
	mcast   *mcast.Plane
	neigh   *neigh.Plane
	links   links
	revoked revocations
	ctl     *control.Server
	metrics *http.Server
	reg     *prometheus.Registry
	started time.Time
	attack  io.Closer // the attack API, only in ipopd_attack builds (attack.go)

	closeOnce sync.Once
	closeErr  error
}

// New checks the node's certificate, creates the TAP and opens the control
// socket (and metrics listener when configured). Certificate problems are
// found before anything is created; on any error nothing is left behind.
func New(cfg *config.Config, opts Options) (*Node, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.OpenTAP == nil {
		opts.OpenTAP = tap.Open
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Node{opts: opts, log: opts.Log, started: opts.Now()}
	n.cfg.Store(cfg)
	var err error
	if n.id, n.ca, err = loadIdentity(cfg, opts.Now()); err != nil {
		return nil, err
	}
	n.log = opts.Log.With("node", n.id.String())

	n.dev, err = opts.OpenTAP(tap.Config{
		Name: cfg.Tap.Name, Mode: tap.Mode(cfg.Tap.Mode), MTU: cfg.Tap.MTU,
		Address: cfg.Tap.Address, Address6: cfg.Tap.Address6, Bridge: cfg.Tap.Bridge, MAC: tapMAC(n.id.ID),
	})
	if err != nil {
		return nil, err
	}
	router, err := igmp.New(igmpConfig(cfg, n.id.ID), opts.Now())
	if err != nil {
		n.dev.Close()
		return nil, fmt.Errorf("igmp: %w", err)
	}
	if err := n.openSocket(cfg); err != nil {
		n.dev.Close()
		return nil, err
	}
	od := topology.NewOnDemand(topology.OnDemandConfig{
		Threshold: int64(cfg.Topology.OnDemand.Threshold),
		Idle:      cfg.Topology.OnDemand.Idle,
		MaxLinks:  cfg.Topology.OnDemand.MaxLinks,
	})
	dcfg := dataplane.Config{Self: n.id.ID, MTU: n.dev.MTU(), TAP: n.dev, OnDemand: od, Log: n.log.With("sys", "data"),
		Signer: trust.NewSigner(n.id, nil), Directory: trust.NewDirectory(n.ca, cfg.Network, 0, nil),
		Identity: n.id, RekeyInterval: cfg.Trust.RekeyInterval}
	if n.links.sock != nil {
		dcfg.Socket = n.links.sock
	}
	n.data = dataplane.New(dcfg)
	if err := n.loadRevocations(cfg.Trust.Revoked); err != nil {
		n.links.close()
		n.dev.Close()
		return nil, err
	}
	n.neigh = neigh.New(arp.NewTable(arp.Config{}), n.data, n.log.With("sys", "neigh"))
	n.mcast = mcast.New(mcast.Config{Self: n.id.ID, Router: router, Data: n.data, Log: n.log.With("sys", "mcast"),
		OnSync: n.neigh.SendFull, OnGone: n.neigh.LinkLost,
		Routes: n.data.Routes, Fanout: cfg.Multicast.Fanout, ReplicateMax: cfg.Multicast.ReplicateMax,
		WantLinks: od.SetTreeLinks, Lossy: n.data.Lossy})
	n.data.Attach(n.mcast, n.neigh)
	n.openLinks(cfg, od)
	if n.ctl, err = control.Listen(cfg.Control.Socket, n.log); err != nil {
		n.links.close()
		n.dev.Close()
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	n.ctl.Handle("/v1/status", func() (any, error) { return n.Status(), nil })
	n.ctl.Handle("/v1/peers", func() (any, error) { return n.peers(), nil })
	n.ctl.Handle("/v1/groups", func() (any, error) { return n.mcast.Status(n.names()), nil })
	n.ctl.HandleQuery("/v1/tree", func(q url.Values) (any, error) {
		g, err := netip.ParseAddr(q.Get("group"))
		if err != nil || !g.IsMulticast() {
			return nil, fmt.Errorf("%w: group=%q is not a multicast group address", control.ErrBadRequest, q.Get("group"))
		}
		names := n.names()
		return n.mcast.TreeWalk(g.Unmap(), func(id nodeid.ID) string {
			if id == n.id.ID {
				return n.id.Name // the walk lists this node too
			}
			return names(id)
		})
	})
	n.ctl.Handle("/v1/arp", func() (any, error) { return n.neigh.Status(n.names()), nil })
	n.reg = n.newRegistry()
	if attackHook != nil {
		n.attack = attackHook(n)
	}
	if cfg.Metrics.Listen != "" {
		if err := n.listenMetrics(cfg.Metrics.Listen); err != nil {
			n.ctl.Close()
			n.links.close()
			n.dev.Close()
			return nil, err
		}
	}
	return n, nil
}

// attackHook serves the attack API of the malicious-member tests; it is
// set only in binaries built with the ipopd_attack tag (attack.go).
var attackHook func(*Node) io.Closer

// names looks up the names of nodes for status output.
func (n *Node) names() func(nodeid.ID) string {
	m := n.links.mgr.Names()
	return func(id nodeid.ID) string { return m[id] }
}

func loadIdentity(cfg *config.Config, now time.Time) (*identity.Identity, *x509.Certificate, error) {
	id, err := identity.LoadNode(cfg.Node.Cert, cfg.Node.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("node.cert/node.key: %w", err)
	}
	ca, err := identity.LoadCACert(cfg.Node.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("node.ca: %w", err)
	}
	addrs := map[string]netip.Prefix{}
	if cfg.Tap.Address.IsValid() {
		addrs["tap.address"] = cfg.Tap.Address
	}
	if cfg.Tap.Address6.IsValid() {
		addrs["tap.address6"] = cfg.Tap.Address6
	}
	if err := identity.CheckNode(id, cfg.Node.Cert, ca, cfg.Node.CA, cfg.Network, addrs, now); err != nil {
		return nil, nil, err
	}
	if cfg.Node.Name != "" && cfg.Node.Name != id.Name {
		return nil, nil, fmt.Errorf("node.name: config says %q but certificate %s is for %q", cfg.Node.Name, cfg.Node.Cert, id.Name)
	}
	return id, ca, nil
}

func (n *Node) listenMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	n.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := n.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("metrics server stopped", "err", err)
		}
	}()
	n.log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

func (n *Node) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&tapCollector{n: n}, n.mcast.Collector())
	return reg
}

// Run serves the control API and reads the TAP until ctx is done or the TAP
// fails, then closes the node. A cancelled ctx is a clean stop (nil).
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- n.ctl.Serve() }()
	go func() { errc <- n.data.ReadTAP() }()
	stopLinks := n.links.run(n.data, errc)
	pctx, stopPlanes := context.WithCancel(context.Background())
	planes := make(chan struct{}, 2)
	go func() { n.mcast.Run(pctx); planes <- struct{}{} }()
	go func() { n.neigh.Run(pctx); planes <- struct{}{} }()
	cfg := n.cfg.Load()
	n.log.Info("ipopd up", "network", cfg.Network, "tap", n.dev.Name(), "mode", cfg.Tap.Mode,
		"mtu", n.dev.MTU(), "mac", n.dev.HardwareAddr().String(), "control", cfg.Control.Socket)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			n.log.Error("stopping", "err", err)
		}
	}
	stopLinks()
	stopPlanes()
	<-planes
	<-planes
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close removes the TAP, the control socket and the metrics listener. It is
// idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		errs := []error{n.ctl.Close(), n.links.close(), n.dev.Close()}
		if n.attack != nil {
			errs = append(errs, n.attack.Close())
		}
		if n.metrics != nil {
			errs = append(errs, n.metrics.Close())
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("ipopd stopped")
	})
	return n.closeErr
}

// Reload applies what can change while running (log level) and warns about
// the rest. The caller has validated cfg; an invalid file never gets here.
func (n *Node) Reload(cfg *config.Config) {
	old := n.cfg.Swap(cfg)
	logged := func() { n.log.Info("config reloaded", "file", cfg.File, "log.level", cfg.Log.Level.String()) }
	// Say so at the level that shows: before going quieter, after going louder.
	if cfg.Log.Level > old.Log.Level {
		logged()
	}
	if n.opts.Level != nil {
		n.opts.Level.Set(cfg.Log.Level)
	}
	if cfg.Log.Level <= old.Log.Level {
		logged()
	}
	if cfg.Trust.Revoked != "" {
		if err := n.loadRevocations(cfg.Trust.Revoked); err != nil {
			n.log.Error("revocation list not reloaded; keeping the one in force", "err", err)
		}
	}
	for _, k := range restartKeys(old, cfg) {
		n.log.Warn("config key changed; restart ipopd to apply it", "key", k)
	}
}

// restartKeys lists keys whose change needs a restart in this version.
func restartKeys(a, b *config.Config) []string {
	var ks []string
	check := func(key string, changed bool) {
		if changed {
			ks = append(ks, key)
		}
	}
	check("network", a.Network != b.Network)
	check("node", a.Node != b.Node)
	check("tap", a.Tap != b.Tap)
	check("control.socket", a.Control != b.Control)
	check("metrics.listen", a.Metrics != b.Metrics)
	check("trust.rekey_interval", a.Trust.RekeyInterval != b.Trust.RekeyInterval)
	return ks
}
