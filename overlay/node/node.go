// Package node wires one ipopd node together: identity, TAP, control API,
// metrics and the data-path readers. It is the one place (besides cmd/) that
// imports across subsystems; each subsystem stays usable on its own.
package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/tap"
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
// afterwards, except cfg (swapped whole on reload) and the atomic counters.
type Node struct {
	opts    Options
	log     *slog.Logger
	cfg     atomic.Pointer[config.Config]
	id      *identity.Identity
	ca      *x509.Certificate
	dev     tap.Device
	ctl     *control.Server
	metrics *http.Server
	reg     *prometheus.Registry
	stats   tapStats
	tapw    *tapWriter
	mcast   *mcast
	arp     *arp.Table
	links   links
	started time.Time

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
		Address: cfg.Tap.Address, Address6: cfg.Tap.Address6, Bridge: cfg.Tap.Bridge,
	})
	if err != nil {
		return nil, err
	}
	n.tapw = &tapWriter{dev: n.dev, stats: &n.stats}
	router, err := igmp.New(igmpConfig(cfg, n.id.ID), opts.Now())
	if err != nil {
		n.dev.Close()
		return nil, fmt.Errorf("igmp: %w", err)
	}
	n.mcast = newMcast(n, router, randomEpoch())
	n.arp = arp.NewTable(arp.Config{})
	if err := n.openLinks(cfg); err != nil {
		n.dev.Close()
		return nil, err
	}
	if n.ctl, err = control.Listen(cfg.Control.Socket, n.log); err != nil {
		n.links.close()
		n.dev.Close()
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	n.ctl.Handle("/v1/status", func() (any, error) { return n.Status(), nil })
	n.ctl.Handle("/v1/peers", func() (any, error) { return n.links.peers(), nil })
	n.ctl.Handle("/v1/groups", func() (any, error) { return n.groups(), nil })
	n.ctl.Handle("/v1/arp", func() (any, error) { return n.neighbours(), nil })
	n.reg = n.newRegistry()
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
	reg.MustRegister(&tapCollector{n: n}, mcastCollector{mc: n.mcast})
	return reg
}

// Run serves the control API and reads the TAP until ctx is done or the TAP
// fails, then closes the node. A cancelled ctx is a clean stop (nil).
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- n.ctl.Serve() }()
	go func() { errc <- n.readTAP() }()
	stopLinks := n.links.run(ctx, errc)
	mctx, stopMcast := context.WithCancel(context.Background())
	go n.mcast.run(mctx)
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
	stopMcast()
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
	return ks
}
