package signal

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// TestServerWithoutRole: a member certificate cannot pose as the
// rendezvous: the server refuses to serve with one, and a node refuses a
// server that presents one.
func TestServerWithoutRole(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	if err := NewServer(ServerConfig{Identity: p.issue(t, "mallory"), CA: p.ca.Cert, Network: testNetwork}).Serve(listen(t)); err == nil {
		t.Fatal("served with a node certificate")
	}
	// A fake server: a plain TLS listener with a node certificate.
	ln := listen(t)
	served := make(chan struct{})
	mallory := p.issue(t, "mallory")
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tlsServer(c, mallory, p)
		tc.Handshake()
		WriteMessage(tc, &Message{Type: TypeWelcome})
	}()
	defer func() { ln.Close(); <-served }()
	c := NewClient(ClientConfig{Servers: []string{ln.Addr().String()}, Identity: p.issue(t, "alpha"), CA: p.ca.Cert, Network: testNetwork})
	if _, _, err := c.dial(context.Background(), ln.Addr().String()); err == nil {
		t.Fatal("connected to a server without the rendezvous role")
	}
}

// TestRevocation: a revoked node is refused at the handshake; revoking a
// connected one ends its session at once, and the others get the list.
func TestRevocation(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	alphaID, eveID := p.issue(t, "alpha"), p.issue(t, "eve")
	alpha := startNode(t, alphaID, p.ca.Cert, addr)
	eve := startNode(t, eveID, p.ca.Cert, addr)
	alpha.waitPeers(t, "eve")
	eve.waitPeers(t, "alpha")

	pem, err := p.ca.SignRevocations(&identity.Revocations{Seq: 1, Issued: time.Now(), Nodes: []nodeid.ID{eveID.ID}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := identity.ParseRevocations(pem, p.ca.Cert, testNetwork)
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	srv.SetRevocations(pem, list)
	alpha.waitPeers(t) // eve gone from the list
	if d := time.Since(revokedAt); d > 2*time.Second {
		t.Errorf("eve's session lasted %v after the revocation", d)
	}
	select {
	case got := <-alpha.revoked:
		if string(got) != string(pem) {
			t.Error("alpha got another list")
		}
	case <-time.After(waitFor):
		t.Fatal("alpha never got the revocation list")
	}
	// Eve comes back: refused at every attempt.
	time.Sleep(300 * time.Millisecond)
	if names(srv.Peers()) != "alpha" {
		t.Errorf("server peers %q after eve's retries", names(srv.Peers()))
	}
	if srv.Stats().Rejected == 0 {
		t.Error("eve's new attempts were not rejected")
	}
}

// TestRelayFloodKeepsVictim: a node that floods a slow node with relays
// gets them dropped and rate-limited, and the victim stays connected
// across presence changes (its presence never queues behind relays).
func TestRelayFloodKeepsVictim(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	victim := dialRaw(t, addr, p.issue(t, "victim"), p.ca.Cert) // never reads after the welcome
	expectType(t, victim, TypeWelcome)
	victimID := func() nodeid.ID {
		deadline := time.Now().Add(waitFor)
		for time.Now().Before(deadline) {
			for _, pi := range srv.Peers() {
				if pi.Name == "victim" {
					return pi.ID
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("victim not registered")
		return nodeid.ID{}
	}()
	attacker := dialRaw(t, addr, p.issue(t, "attacker"), p.ca.Cert)
	expectType(t, attacker, TypeWelcome)
	go func() { // the attacker reads nothing either; its errors are dropped
		for range 3000 {
			if WriteMessage(attacker, &Message{Type: TypeRelay, To: victimID, Payload: []byte(`"` + fmt.Sprint(make([]byte, 1000)) + `"`)}) != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	// Presence changes: a node joins and leaves, twice.
	for range 2 {
		n := startNode(t, p.issue(t, "other"), p.ca.Cert, addr)
		n.waitState(t, true)
		n.stop()
	}
	time.Sleep(200 * time.Millisecond)
	found := false
	for _, pi := range srv.Peers() {
		found = found || pi.Name == "victim"
	}
	if !found {
		t.Error("the victim's session was dropped")
	}
	if st := srv.Stats(); st.Limited == 0 || st.Dropped == 0 {
		t.Errorf("flood not limited: %+v", st)
	}
}

// TestPresenceInParts: a presence list of any size goes in parts, never
// over the message limit, and the client puts it back together.
func TestPresenceInParts(t *testing.T) {
	p := newPKI(t, testNetwork)
	srv := NewServer(ServerConfig{Identity: p.issue(t, "rendezvous"), CA: p.ca.Cert, Network: testNetwork})
	for i := range 3*PresencePart + 7 {
		var id nodeid.ID
		id[0], id[1] = byte(i>>8), byte(i)
		id[31] = 1
		srv.nodes[id] = &session{peer: PeerInfo{ID: id, Name: fmt.Sprintf("node-%04d", i)}}
	}
	frames := srv.fullList()
	if len(frames) != 4 {
		t.Fatalf("%d parts for %d nodes", len(frames), 3*PresencePart+7)
	}
	// Play them to a client's reader.
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		for _, f := range frames {
			a.Write(f)
		}
		a.Close()
	}()
	var got []PeerInfo
	c := NewClient(ClientConfig{Identity: p.issue(t, "alpha"), OnPeers: func(ps []PeerInfo) { got = ps }})
	cc := &clientConn{raw: b, out: make(chan []byte, 1), done: make(chan struct{})}
	c.readLoopOn(cc, b)
	if len(got) != 3*PresencePart+7 {
		t.Errorf("client has %d nodes", len(got))
	}
}

// TestConnectionCaps: connections from one address beyond the bound are
// closed at once, without a handshake.
func TestConnectionCaps(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	var conns []net.Conn
	for range maxPerAddress + 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(waitFor)
	for srv.Stats().TooMany < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.Stats().TooMany; got < 5 {
		t.Errorf("%d connections refused, want 5", got)
	}
}

// TestSessionEndsAtExpiry: the server ends a node's session when the
// node's certificate expires, and refuses it afterwards.
func TestSessionEndsAtExpiry(t *testing.T) {
	checkLeaks(t)
	p := newPKI(t, testNetwork)
	srv, addr := startServer(t, p, nil)
	alpha := startNode(t, p.issue(t, "alpha"), p.ca.Cert, addr)
	shortID := p.issueFor(t, "short", 3*time.Second)
	short := startNode(t, shortID, p.ca.Cert, addr)
	alpha.waitPeers(t, "short")
	short.waitPeers(t, "alpha")
	wait := time.Until(shortID.NotAfter)
	alpha.waitPeersWithin(t, wait+2*time.Second) // short gone
	if late := time.Since(shortID.NotAfter); late > 1500*time.Millisecond {
		t.Errorf("the session lasted %s past the certificate", late)
	}
	time.Sleep(500 * time.Millisecond)
	if names(srv.Peers()) != "alpha" {
		t.Errorf("server peers %q after the expiry", names(srv.Peers()))
	}
}
