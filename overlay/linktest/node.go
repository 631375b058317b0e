package linktest

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v2"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/tap/taptest"
	"github.com/ipopd/ipopd/topology"
)

// CA is a network CA for tests, with a directory for its nodes' files.
type CA struct {
	*identity.CA
	Network string
	dir     string
}

// NewCA makes a CA for network "test".
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := identity.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{CA: ca, Network: "test", dir: t.TempDir()}
}

// Identity issues a certificate for name, allowing prefixes, and loads it
// as a node would.
func (ca *CA) Identity(t testing.TB, name string, prefixes ...netip.Prefix) *identity.Identity {
	t.Helper()
	crt, key, err := ca.Issue(name, prefixes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	if err := os.WriteFile(cf, crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, key, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := identity.LoadNode(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Options shape a Node; the zero value is a node on loopback with the
// default ring and no on-demand links.
type Options struct {
	Ring     topology.RingConfig
	OnDemand topology.OnDemandConfig
	// MAC is the fake TAP's address (default 02:00:00:00:00:01).
	MAC net.HardwareAddr
	// Net is the network the socket binds on: nil is the host's
	// (loopback candidates only); a pion vnet.Net for a virtual one.
	Net transport.Net
	// Interfaces limits host candidates (default "lo" on the host).
	Interfaces []string
	// Prefixes are the addresses the node's certificate allows.
	Prefixes []netip.Prefix
	// RekeyInterval is how often link keys move on (0: the default).
	RekeyInterval time.Duration
	Log           *slog.Logger
}

// Node is one node's link stack in this process: its socket, data plane
// and link control, with a fake TAP. Its goroutines are those of a real
// node (TAP reader, socket reader, link control loop); Stop, or the end of
// the test, stops them.
type Node struct {
	Name     string
	Identity *identity.Identity
	// TAP is the fake TAP: Inject frames as local hosts would. What the
	// node writes to it arrives on Received (read it there, not from
	// TAP.Written); frames beyond its room are dropped and counted in
	// Overflow, so a node never blocks on a test that does not read.
	TAP      *taptest.Device
	Received chan []byte
	Overflow atomic.Uint64
	Socket   *RecordingSocket
	Data     *dataplane.Plane
	Manager  *overlay.Manager

	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// Start starts a node named name with a certificate of ca and joins it to
// the hub (which tells every node of the others).
func Start(t testing.TB, ca *CA, hub *Hub, name string, o Options) *Node {
	t.Helper()
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	}
	log = log.With("node", name)
	id := ca.Identity(t, name, o.Prefixes...)
	st := nat.Settings{Interfaces: o.Interfaces, IncludeLoopback: o.Net == nil}
	if o.Net == nil && len(st.Interfaces) == 0 {
		st.Interfaces = []string{"lo"}
	}
	sock, err := nat.Listen(st, o.Net, log)
	if err != nil {
		t.Fatal(err)
	}
	rs := &RecordingSocket{Socket: sock}
	mac := o.MAC
	if mac == nil {
		mac = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	}
	dev := taptest.New("fake0", 1400, mac, 1024)
	od := topology.NewOnDemand(o.OnDemand)
	dp := dataplane.New(dataplane.Config{Self: id.ID, MTU: 1400, TAP: dev, Socket: rs, OnDemand: od, Log: log,
		Signer: trust.NewSigner(id, nil), Directory: trust.NewDirectory(ca.Cert, ca.Network, 0, nil),
		Identity: id, RekeyInterval: o.RekeyInterval})
	mgr := overlay.NewManager(overlay.Config{Identity: id, CA: ca.Cert, Network: ca.Network, Socket: sock, NAT: st,
		Signal: hub.Port(id.ID), Data: dp, Log: log, Ring: o.Ring, OnDemand: od, RekeyInterval: o.RekeyInterval})
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{Name: name, Identity: id, TAP: dev, Received: make(chan []byte, 4096), Socket: rs, Data: dp, Manager: mgr,
		stop: cancel, done: make(chan struct{})}
	go n.drainTAP()
	serveDone, tapDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(serveDone); _ = sock.Serve(dp.NewReceiver().Receive) }()
	go func() { defer close(tapDone); _ = dp.ReadTAP() }()
	go func() {
		defer close(n.done)
		_ = mgr.Run(ctx)
		// As a node stops: link control first (its byes go out), then
		// the TAP and the socket.
		hub.Leave(id.ID)
		dev.Close()
		<-tapDone
		sock.Close()
		<-serveDone
	}()
	hub.Join(id.ID, name, mgr)
	t.Cleanup(n.Stop)
	return n
}

func (n *Node) drainTAP() {
	for {
		select {
		case f := <-n.TAP.Written():
			select {
			case n.Received <- f:
			default:
				n.Overflow.Add(1)
			}
		case <-n.done:
			return
		}
	}
}

// Stop stops the node and waits until its goroutines have returned. It is
// idempotent.
func (n *Node) Stop() {
	n.stop()
	<-n.done
}
