package signal

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
)

// Two nodes see each other in presence and relay both ways; the server
// stamps From with the sender's verified ID.
func TestPresenceAndRelay(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, func(c *ServerConfig) {
		c.STUN = []string{"stun:198.18.0.10:3478"}
		c.TURN = func(n PeerInfo) []iceserver.TURN {
			return []iceserver.TURN{{URL: "turn:198.18.0.10:3478?transport=udp", Username: n.Name, Credential: "pw"}}
		}
	})
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	beta := startNode(t, p.issue(t, "beta"), p.ca.Cert, addr)

	alpha.waitState(t, true)
	if turn := <-alpha.welcome; len(turn) != 1 || turn[0].Username != "alpha" {
		t.Errorf("alpha's welcome TURN = %+v, want alpha's credentials", turn)
	}
	alpha.waitPeers(t, "beta")
	beta.waitPeers(t, "alpha")
	if got := names(srv.Peers()); got != "alpha,beta" && got != "beta,alpha" {
		t.Errorf("server Peers = %q", got)
	}
	if alpha.Server() != addr || !alpha.Connected() {
		t.Errorf("alpha: Server() = %q, Connected() = %v", alpha.Server(), alpha.Connected())
	}

	if err := alpha.Send(beta.id.ID, []byte(`{"ufrag":"a1"}`)); err != nil {
		t.Fatal(err)
	}
	if r := beta.waitRelay(t); r.from != alpha.id.ID || r.payload != `{"ufrag":"a1"}` {
		t.Errorf("beta got %+v", r)
	}
	if err := beta.Send(alpha.id.ID, []byte(`"hello"`)); err != nil {
		t.Fatal(err)
	}
	if r := alpha.waitRelay(t); r.from != beta.id.ID || r.payload != `"hello"` {
		t.Errorf("alpha got %+v", r)
	}

	// A node claiming to be beta is relayed as itself.
	mallory := p.issue(t, "mallory")
	c := dialRaw(t, addr, mallory, p.ca.Cert)
	expectType(t, c, TypeWelcome)
	if err := WriteMessage(c, &Message{Type: TypeRelay, From: beta.id.ID, To: alpha.id.ID, Payload: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	if r := alpha.waitRelay(t); r.from != mallory.ID {
		t.Errorf("forged From reached alpha as %s, want mallory %s", r.from.Short(), mallory.ID.Short())
	}

	// Leaving is presence too.
	beta.stop()
	alpha.waitPeers(t, "mallory")
}

func TestRelayToOfflineIsDroppedAndReported(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	c := dialRaw(t, addr, p.issue(t, "alpha"), p.ca.Cert)
	expectType(t, c, TypeWelcome)
	ghost := p.issue(t, "ghost").ID
	if err := WriteMessage(c, &Message{Type: TypeRelay, To: ghost, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if m := expectType(t, c, TypeError); m.To != ghost || m.Error == "" {
		t.Errorf("error message %+v", m)
	}
	if got := srv.Stats().Dropped; got != 1 {
		t.Errorf("Dropped = %d, want 1", got)
	}
}

// A node without a certificate of this network gets nothing: no welcome,
// no presence, and it never shows up in anyone's list.
func TestRejectsForeignCertificates(t *testing.T) {
	p := newPKI(t, testNetwork)
	other := newPKI(t, testNetwork) // same network name, another CA
	// A certificate signed by the right CA key but for another network.
	otherNet := &pki{ca: &identity.CA{Cert: p.ca.Cert, Key: p.ca.Key, Network: "other"}, dir: t.TempDir()}

	for _, tc := range []struct {
		name string
		id   *identity.Identity
	}{
		{"other CA", other.issue(t, "eve")},
		{"other network", otherNet.issue(t, "eve")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			srv, addr := startServer(t, p, nil)
			alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
			alpha.waitPeers(t)

			// The raw connection trusts the real CA, so the rejection
			// is the server's own check, not eve refusing the server.
			c := dialRaw(t, addr, tc.id, p.ca.Cert)
			if m, err := ReadMessage(c); err == nil {
				t.Fatalf("rejected node got %+v", m)
			}
			eventually(t, "the rejection to be counted", func() bool { return srv.Stats().Rejected == 1 })

			// A real client keeps trying and never gets a welcome.
			eve := startNode(t, tc.id, p.ca.Cert, addr)
			time.Sleep(300 * time.Millisecond)
			select {
			case <-eve.welcome:
				t.Fatal("eve got a welcome")
			case got := <-eve.peers:
				t.Fatalf("eve got presence %q", names(got))
			default:
			}
			if eve.Connected() || !errors.Is(eve.Send(alpha.id.ID, []byte(`1`)), ErrNotConnected) {
				t.Error("eve is connected")
			}
			if srv.Stats().Rejected < 2 {
				t.Errorf("Rejected = %d, want the client's attempts counted too", srv.Stats().Rejected)
			}
			if got := names(srv.Peers()); got != "alpha" {
				t.Errorf("server Peers = %q, want alpha only", got)
			}
		})
	}
}

// A bad frame from one node closes that node's connection only.
func TestBadFrameClosesOnlyThatConnection(t *testing.T) {
	p := newPKI(t, testNetwork)
	header := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	frame := func(body string) []byte { return append(header(uint32(len(body))), body...) }
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"oversized", header(MaxMessageSize + 1)},
		{"huge length", header(0xffffffff)},
		{"empty", frame("")},
		{"not JSON", frame("hello")},
		{"no type", frame("{}")},
		{"bad node ID", frame(`{"type":"relay","to":"zz"}`)},
		{"payload not JSON", frame(`{"type":"relay","payload":nope}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			srv, addr := startServer(t, p, nil)
			alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
			alpha.waitPeers(t)

			c := dialRaw(t, addr, p.issue(t, "mallory"), p.ca.Cert)
			expectType(t, c, TypeWelcome)
			alpha.waitPeers(t, "mallory")
			if _, err := c.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			alpha.waitPeers(t)
			if got := srv.Stats().Malformed; got != 1 {
				t.Errorf("Malformed = %d, want 1", got)
			}

			// The server still serves: a new node joins and relays.
			beta := startNode(t, p.issue(t, "beta"), p.ca.Cert, addr)
			alpha.waitPeers(t, "beta")
			beta.waitState(t, true)
			if err := beta.Send(alpha.id.ID, []byte(`true`)); err != nil {
				t.Fatal(err)
			}
			alpha.waitRelay(t)
		})
	}
}

// A second connection with the same identity replaces the first.
func TestSameIdentityReplaces(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	alpha := p.issue(t, "alpha")
	first := dialRaw(t, addr, alpha, p.ca.Cert)
	expectType(t, first, TypeWelcome)
	second := dialRaw(t, addr, alpha, p.ca.Cert)
	if m := expectType(t, second, TypeWelcome); m.You == nil || m.You.ID != alpha.ID {
		t.Errorf("welcome You = %+v", m.You)
	}
	expectClosed(t, first)
	if st := srv.Stats(); st.Replaced != 1 || st.Nodes != 1 {
		t.Errorf("stats %+v, want 1 replaced, 1 node", st)
	}
	// The old connection's end must not remove the new one.
	if m := expectType(t, second, TypePeers); names(m.Peers) != "alpha" {
		t.Errorf("presence %q", names(m.Peers))
	}
	if err := WriteMessage(second, &Message{Type: TypePing}); err != nil {
		t.Fatal(err)
	}
	expectType(t, second, TypePong)
	if got := names(srv.Peers()); got != "alpha" {
		t.Errorf("server Peers = %q", got)
	}
}

// A node that answers no pings is dropped after IdleTimeout; a client,
// which answers them, stays.
func TestKeepalive(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, func(c *ServerConfig) {
		c.PingInterval, c.IdleTimeout = 50*time.Millisecond, 500*time.Millisecond
	})
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	alpha.waitState(t, true)
	silent := dialRaw(t, addr, p.issue(t, "silent"), p.ca.Cert)
	expectType(t, silent, TypeWelcome)
	expectType(t, silent, TypePing) // the server does ping ...
	start := time.Now()
	expectClosed(t, silent) // ... and hangs up on a node that never answers
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent node dropped after %v", d)
	}
	time.Sleep(time.Second) // two idle timeouts
	if !alpha.Connected() || names(srv.Peers()) != "alpha" {
		t.Errorf("alpha dropped although it answers pings; Peers = %q", names(srv.Peers()))
	}
}

func TestServeAfterCloseAndBadConfig(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv := NewServer(ServerConfig{Identity: p.issue(t, "rendezvous"), CA: p.ca.Cert, Network: testNetwork})
	srv.Close()
	srv.Close()
	if err := srv.Serve(listen(t)); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if err := NewServer(ServerConfig{}).Serve(listen(t)); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Serve without identity = %v, want ErrBadConfig", err)
	}
}
