package signal

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Stopping the server and starting another on the same address: clients
// notice, reconnect by themselves, and presence is rebuilt.
func TestReconnectAfterServerRestart(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	ln := listen(t)
	addr := ln.Addr().String()
	srv := NewServer(ServerConfig{Identity: p.issue(t, "rendezvous"), CA: p.ca.Cert, Network: testNetwork, Log: testLog(t)})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	beta := startNode(t, p.issue(t, "beta"), p.ca.Cert, addr)
	alpha.waitState(t, true)
	beta.waitState(t, true)
	alpha.waitPeers(t, "beta")
	beta.waitPeers(t, "alpha")

	srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	alpha.waitState(t, false)
	beta.waitState(t, false)
	if err := alpha.Send(beta.id.ID, []byte(`1`)); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send while down = %v, want ErrNotConnected", err)
	}

	var ln2 net.Listener
	eventually(t, "the address to be free again", func() bool {
		var err error
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	serveOn(t, p, ln2, nil)
	alpha.waitState(t, true)
	alpha.waitPeers(t, "beta")
	beta.waitPeers(t, "alpha")
	if err := alpha.Send(beta.id.ID, []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	if r := beta.waitRelay(t); r.payload != "2" {
		t.Errorf("after restart beta got %+v", r)
	}
}

// Servers are tried in order; an unreachable first one is skipped.
func TestClientTriesServersInOrder(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	ln := listen(t)
	dead := ln.Addr().String()
	ln.Close() // nothing answers there now
	_, addr := startServer(t, p, nil)
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, dead, addr)
	alpha.waitState(t, true)
	if alpha.Server() != addr {
		t.Errorf("Server() = %q, want %q", alpha.Server(), addr)
	}
}

func TestSendWhileDisconnected(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	time.Sleep(100 * time.Millisecond) // a few failed rounds
	if err := alpha.Send(p.issue(t, "beta").ID, []byte(`{}`)); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send = %v, want ErrNotConnected", err)
	}
	if alpha.Connected() || alpha.Server() != "" {
		t.Error("connected to nothing")
	}
}

func TestSendRejectsBadPayload(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	_, addr := startServer(t, p, nil)
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	alpha.waitState(t, true)
	to := p.issue(t, "beta").ID
	if err := alpha.Send(to, []byte(`not json`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("Send(not JSON) = %v, want ErrMalformed", err)
	}
	big := make([]byte, MaxMessageSize)
	big[0], big[len(big)-1] = '"', '"'
	for i := 1; i < len(big)-1; i++ {
		big[i] = 'a'
	}
	if err := alpha.Send(to, big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Send(64 KiB) = %v, want ErrTooLarge", err)
	}
}

func TestRunConfigErrors(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	if err := NewClient(ClientConfig{}).Run(context.Background()); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Run with empty config = %v, want ErrBadConfig", err)
	}
	c := NewClient(ClientConfig{Servers: []string{"127.0.0.1:1"}, Identity: p.issue(t, "a"), CA: p.ca.Cert, Network: testNetwork})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "Run to start", func() bool { return c.running.Load() })
	if err := c.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}

// LocalAddrGone ends the session only when the address it leaves from is
// gone, and the client dials again at once.
func TestLocalAddrGone(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	_, addr := startServer(t, p, nil)
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	alpha.waitState(t, true)
	var asked netip.Addr
	if alpha.LocalAddrGone(func(a netip.Addr) bool { asked = a; return true }) {
		t.Fatal("LocalAddrGone ended a session whose address is still here")
	}
	if asked != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("asked about %s, want the session's local address 127.0.0.1", asked)
	}
	if !alpha.LocalAddrGone(func(netip.Addr) bool { return false }) {
		t.Fatal("LocalAddrGone kept a session whose address is gone")
	}
	alpha.waitState(t, false)
	alpha.waitState(t, true) // dialled again
	if alpha.LocalAddrGone(func(netip.Addr) bool { return true }) {
		t.Error("the new session was ended")
	}
}
