package overlay

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap/taptest"
)

// hub is an in-memory rendezvous: it relays payloads between managers.
type hub struct {
	mu    sync.Mutex
	nodes map[nodeid.ID]*Manager
	down  bool
}

type hubPort struct {
	h    *hub
	self nodeid.ID
}

func (p hubPort) Send(to nodeid.ID, payload []byte) error {
	p.h.mu.Lock()
	m, down := p.h.nodes[to], p.h.down
	p.h.mu.Unlock()
	if down || m == nil {
		return ErrClosed
	}
	m.OnRelay(p.self, append([]byte(nil), payload...))
	return nil
}

func (p hubPort) Connected() bool {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return !p.h.down
}

// recordingSocket remembers the data packets a manager sends.
type recordingSocket struct {
	*nat.Socket
	mu   sync.Mutex
	sent []nat.Packet
}

func (s *recordingSocket) WriteBatch(pkts []nat.Packet) (int, error) {
	s.mu.Lock()
	for _, p := range pkts {
		s.sent = append(s.sent, nat.Packet{Data: append([]byte(nil), p.Data...), Addr: p.Addr})
	}
	s.mu.Unlock()
	return s.Socket.WriteBatch(pkts)
}

type testNode struct {
	m    *Manager
	dev  *taptest.Device
	sock *recordingSocket
	id   *identity.Identity
}

func issue(t *testing.T, ca *identity.CA, dir, name string) *identity.Identity {
	t.Helper()
	crt, key, err := ca.Issue(name, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cf, crt, 0o644)
	os.WriteFile(kf, key, 0o600)
	id, err := identity.LoadNode(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func startNode(t *testing.T, ctx context.Context, h *hub, ca *x509.Certificate, id *identity.Identity, mac byte) *testNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id.Name)
	}
	st := nat.Settings{Interfaces: []string{"lo"}, IncludeLoopback: true}
	s, err := nat.Listen(st, log)
	if err != nil {
		t.Fatal(err)
	}
	rs := &recordingSocket{Socket: s}
	dev := taptest.New("fake0", 1400, net.HardwareAddr{2, 0, 0, 0, 0, mac}, 256)
	m := NewManager(Config{Identity: id, CA: ca, Network: "test", Socket: rs, NAT: st,
		Signal: hubPort{h, id.ID}, TAP: dev, MTU: 1400, Log: log})
	h.mu.Lock()
	h.nodes[id.ID] = m
	h.mu.Unlock()
	go s.Serve(m.Receive)
	go m.Run(ctx)
	go func() { // the node's TAP reader
		bufs, sizes := [][]byte{make([]byte, 2000)}, []int{0}
		for {
			n, err := dev.Read(bufs, sizes)
			if err != nil {
				return
			}
			m.Forward([][]byte{bufs[0][:n*sizes[0]]})
		}
	}()
	t.Cleanup(func() { dev.Close(); s.Close() })
	return &testNode{m: m, dev: dev, sock: rs, id: id}
}

func waitUp(t *testing.T, n *testNode, peers int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		up := 0
		for _, l := range n.m.Peers().Links {
			if l.State == "up" {
				up++
			}
		}
		if up == peers {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: links not up: %+v", n.id.Name, n.m.Peers().Links)
}

func frame(dst, src byte, payload string) []byte {
	f := []byte{dst & 0xff, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, src, 0x88, 0xb5}
	if dst == 0xff {
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	} else {
		f[0] = 2
	}
	return append(f, payload...)
}

func expectFrame(t *testing.T, dev *taptest.Device, want []byte) {
	t.Helper()
	select {
	case got := <-dev.Written():
		if !bytes.Equal(got, want) {
			t.Fatalf("TAP got %x, want %x", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame on %s's TAP", dev.Name())
	}
}

// TestTwoNodesInProcess: two managers with real ICE and DTLS over loopback
// link up, carry frames both ways, drop replayed and garbled packets, and
// tear down on bye.
func TestTwoNodesInProcess(t *testing.T) {
	dir := t.TempDir()
	ca, err := identity.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ida, idb := issue(t, ca, dir, "alpha"), issue(t, ca, dir, "beta")
	h := &hub{nodes: map[nodeid.ID]*Manager{}}
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	a := startNode(t, ctxA, h, ca.Cert, ida, 0xa)
	b := startNode(t, ctxB, h, ca.Cert, idb, 0xb)
	a.m.OnPeers([]PeerInfo{{ID: idb.ID, Name: "beta"}})
	b.m.OnPeers([]PeerInfo{{ID: ida.ID, Name: "alpha"}})
	waitUp(t, a, 1)
	waitUp(t, b, 1)
	if p := a.m.Peers().Links[0]; p.Path != "host" || p.Name != "beta" {
		t.Errorf("a's link: %+v", p)
	}

	bcast := frame(0xff, 0xa, "hello from alpha")
	a.dev.Inject(bcast)
	expectFrame(t, b.dev, bcast)
	uni := frame(0xa, 0xb, "unicast to alpha")
	b.dev.Inject(uni)
	expectFrame(t, a.dev, uni)
	if node, ok := a.m.macs.lookup([6]byte{2, 0, 0, 0, 0, 0xb}); !ok || node != b.m.self {
		t.Error("alpha did not learn beta's MAC")
	}

	// Replay a captured packet and a garbled copy into beta.
	a.sock.mu.Lock()
	captured := a.sock.sent[len(a.sock.sent)-1]
	a.sock.mu.Unlock()
	garbled := append([]byte(nil), captured.Data...)
	garbled[len(garbled)-1] ^= 1
	// Everything goes in through the real sockets: Receive has one caller.
	bAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(b.sock.LocalAddr().Port))
	before := b.m.Peers().Drops
	for _, pkt := range [][]byte{captured.Data, garbled, {0xd0, 1}} {
		if err := a.sock.WriteTo(pkt, bAddr); err != nil {
			t.Fatal(err)
		}
	}
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.WriteToUDPAddrPort(garbled, bAddr)
	var after map[string]uint64
	deadline := time.Now().Add(2 * time.Second)
	for {
		after = b.m.Peers().Drops
		if after["replayed"] == before["replayed"]+1 && after["auth_failed"] >= before["auth_failed"]+2 &&
			after["unknown_source"] == before["unknown_source"]+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drops before %v after %v", before, after)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case f := <-b.dev.Written():
		t.Fatalf("a replayed or garbled packet reached the TAP: %x", f)
	case <-time.After(200 * time.Millisecond):
	}

	// Alpha stops: it says bye, and beta marks the link down at once.
	stopA()
	deadline = time.Now().Add(5 * time.Second)
	for {
		l := b.m.Peers().Links[0]
		if l.State == "down" {
			if l.Reason != "peer left" {
				t.Errorf("down reason %q", l.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta's link still %s 5s after alpha stopped", l.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
