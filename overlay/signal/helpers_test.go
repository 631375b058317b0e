package signal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

const (
	testNetwork = "demo"
	waitFor     = 5 * time.Second
)

// pki is one network's CA and a way to issue node identities from it.
type pki struct {
	ca  *identity.CA
	dir string
}

func newPKI(t testing.TB, network string) *pki {
	t.Helper()
	ca, err := identity.NewCA(network, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, dir: t.TempDir()}
}

// issue returns a loaded identity for name, as a node would have it; the
// one named "rendezvous" has the rendezvous role.
func (p *pki) issue(t testing.TB, name string) *identity.Identity {
	t.Helper()
	return p.issueFor(t, name, time.Hour)
}

// issueFor is issue with a certificate valid for valid.
func (p *pki) issueFor(t testing.TB, name string, valid time.Duration) *identity.Identity {
	t.Helper()
	role := ""
	if name == "rendezvous" {
		role = identity.RoleRendezvous
	}
	certPEM, keyPEM, err := p.ca.IssueRole(name, nil, role, valid)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := identity.LoadNode(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkLeaks fails the test if goroutines started during it are still
// running after its cleanups. Call it first, so its cleanup runs last.
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// startServer serves on a loopback port until the test ends.
func startServer(t *testing.T, p *pki, mod func(*ServerConfig)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, p, ln, mod), ln.Addr().String()
}

func serveOn(t *testing.T, p *pki, ln net.Listener, mod func(*ServerConfig)) *Server {
	t.Helper()
	cfg := ServerConfig{Identity: p.issue(t, "rendezvous"), CA: p.ca.Cert, Network: p.ca.Network, Log: testLog(t)}
	if mod != nil {
		mod(&cfg)
	}
	srv := NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// node is a running Client whose callbacks feed channels.
type node struct {
	*Client
	id      *identity.Identity
	state   chan bool
	welcome chan []iceserver.TURN
	peers   chan []PeerInfo
	relays  chan relayed
	revoked chan []byte
	stop    func()
}

type relayed struct {
	from    nodeid.ID
	payload string
}

func startNode(t *testing.T, id *identity.Identity, ca *x509.Certificate, servers ...string) *node {
	t.Helper()
	n := &node{id: id, state: make(chan bool, 64), welcome: make(chan []iceserver.TURN, 64),
		peers: make(chan []PeerInfo, 64), relays: make(chan relayed, 64), revoked: make(chan []byte, 8)}
	n.Client = NewClient(ClientConfig{
		Servers: servers, Identity: id, CA: ca, Network: testNetwork,
		OnWelcome:  func(_ []string, turn []iceserver.TURN) { n.welcome <- turn },
		OnPeers:    func(p []PeerInfo) { n.peers <- p },
		OnRelay:    func(from nodeid.ID, b []byte) { n.relays <- relayed{from, string(b)} },
		OnState:    func(up bool) { n.state <- up },
		OnRevoked:  func(pem []byte) { n.revoked <- pem },
		Log:        testLog(t).With("node", id.Name),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run(%s): %v", id.Name, err)
			}
		})
	}
	t.Cleanup(n.stop)
	return n
}

// waitState waits for the next OnState to report want.
func (n *node) waitState(t *testing.T, want bool) {
	t.Helper()
	select {
	case got := <-n.state:
		if got != want {
			t.Fatalf("%s: OnState(%v), want %v", n.id.Name, got, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("%s: no OnState(%v)", n.id.Name, want)
	}
}

// waitPeers waits until an OnPeers list has exactly the names in want.
func (n *node) waitPeers(t *testing.T, want ...string) []PeerInfo {
	t.Helper()
	return n.waitPeersWithin(t, waitFor, want...)
}

// waitPeersWithin is waitPeers with its own timeout.
func (n *node) waitPeersWithin(t *testing.T, within time.Duration, want ...string) []PeerInfo {
	t.Helper()
	timeout := time.After(within)
	var last []PeerInfo
	for {
		select {
		case last = <-n.peers:
			if names(last) == strings.Join(want, ",") {
				return last
			}
		case <-timeout:
			t.Fatalf("%s: peers %q, want %q", n.id.Name, names(last), want)
		}
	}
}

func (n *node) waitRelay(t *testing.T) relayed {
	t.Helper()
	select {
	case r := <-n.relays:
		return r
	case <-time.After(waitFor):
		t.Fatalf("%s: no relay", n.id.Name)
		return relayed{}
	}
}

func names(peers []PeerInfo) string {
	s := make([]string, len(peers))
	for i, p := range peers {
		s[i] = p.Name
	}
	return strings.Join(s, ",")
}

// dialRaw completes a TLS handshake as id, trusting ca, without reading.
func dialRaw(t *testing.T, addr string, id *identity.Identity, ca *x509.Certificate) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, tlsConfig(id, ca, testNetwork, func(*identity.Peer) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitFor))
	return c
}

// expectType reads until a message of type typ arrives.
func expectType(t *testing.T, r *tls.Conn, typ string) *Message {
	t.Helper()
	for {
		m, err := ReadMessage(r)
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// expectClosed reads until the server ends the connection.
func expectClosed(t *testing.T, r *tls.Conn) {
	t.Helper()
	for {
		if _, err := ReadMessage(r); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open: %v", err)
			}
			return
		}
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLog logs through t, so output shows only for failing tests (or -v).
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// tlsServer is the server side of a TLS connection as id, requiring a
// certificate of p's CA (a stand-in for a server in tests).
func tlsServer(c net.Conn, id *identity.Identity, p *pki) *tls.Conn {
	return tls.Server(c, tlsConfig(id, p.ca.Cert, testNetwork, func(*identity.Peer) error { return nil }))
}
