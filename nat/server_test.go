package nat

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/turn/v2"

	"github.com/ipopd/ipopd/nat/iceserver"
)

const (
	testRealm  = "test"
	testSecret = "s3cret"
)

// newServer runs a STUN/TURN server on loopback with user "alice"/"pw"
// and the test secret.
func newServer(t *testing.T) *Server {
	t.Helper()
	srv, err := NewServer(ServerConfig{
		Listen:  "127.0.0.1:0",
		RelayIP: "127.0.0.1",
		Realm:   testRealm,
		Users:   map[string]string{"alice": "pw"},
		Secret:  testSecret,
		Log:     testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func stunURL(srv *Server) string { return "stun:" + srv.Addr().String() }
func turnURL(srv *Server) string { return "turn:" + srv.Addr().String() + "?transport=udp" }

func ofType(cands []ice.Candidate, typ ice.CandidateType) []ice.Candidate {
	var out []ice.Candidate
	for _, c := range cands {
		if c.Type() == typ {
			out = append(out, c)
		}
	}
	return out
}

// The server-reflexive candidate is learnt through the shared socket: its
// port is the socket's own, which only a binding request sent from that
// socket (and its answer demultiplexed back to pion) can show.
func TestGatherSrflxThroughSocket(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	sk := listen(t, loopback())
	collect(t, sk)
	st := loopback()
	st.STUN = []string{stunURL(srv)}
	cands := gather(t, newAgent(t, sk, st, nil))
	srflx := ofType(cands, ice.CandidateTypeServerReflexive)
	if len(srflx) == 0 {
		t.Fatalf("no srflx candidate among %v", cands)
	}
	for _, c := range srflx {
		if c.Address() != "127.0.0.1" || c.Port() != sk.LocalAddr().Port {
			t.Errorf("srflx %s, want 127.0.0.1:%d", c, sk.LocalAddr().Port)
		}
	}
	if host := ofType(cands, ice.CandidateTypeHost); len(host) != 1 || host[0].Address() != "127.0.0.1" {
		t.Errorf("host candidates %v, want just 127.0.0.1", host)
	}
}

func TestGatherRelay(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	sk := listen(t, loopback())
	st := loopback()
	st.TURN = []iceserver.TURN{{URL: turnURL(srv), Username: "alice", Credential: "pw"}}
	relay := ofType(gather(t, newAgent(t, sk, st, nil)), ice.CandidateTypeRelay)
	if len(relay) != 1 || relay[0].Address() != "127.0.0.1" {
		t.Fatalf("relay candidates %v, want one on 127.0.0.1", relay)
	}
}

// Two relay-only agents connect through the TURN server and exchange data
// over their ice.Conns, with static and with time-limited credentials.
func TestRelayOnlyConnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		cred func(node string) iceserver.TURN
	}{
		{"static", func(string) iceserver.TURN { return iceserver.TURN{Username: "alice", Credential: "pw"} }},
		{"ephemeral", func(node string) iceserver.TURN {
			u, p := EphemeralCredentials(testSecret, node, time.Hour, time.Now())
			return iceserver.TURN{Username: u, Credential: p}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			srv := newServer(t)
			agents := make([]*ice.Agent, 2)
			for i, node := range []string{"alpha", "beta"} {
				sk := listen(t, loopback())
				collect(t, sk)
				st := loopback()
				st.RelayOnly = true
				ts := tc.cred(node)
				ts.URL = turnURL(srv)
				agents[i] = newAgent(t, sk, st, []iceserver.TURN{ts})
			}
			ca, cb := connect(t, agents[0], agents[1])
			p, err := SelectedPath(agents[0])
			if err != nil {
				t.Fatal(err)
			}
			if p.LocalType != ice.CandidateTypeRelay || p.RemoteType != ice.CandidateTypeRelay || p.Direct {
				t.Errorf("path %+v, want relay-relay, not direct", p)
			}
			for i := range 3 {
				msg := fmt.Appendf(nil, "\x80ping %d", i)
				if _, err := ca.Write(msg); err != nil {
					t.Fatal(err)
				}
				if got := readConn(t, cb); string(got) != string(msg) {
					t.Fatalf("b read %q, want %q", got, msg)
				}
				if _, err := cb.Write(append(msg, '!')); err != nil {
					t.Fatal(err)
				}
				if got := readConn(t, ca); string(got) != string(msg)+"!" {
					t.Fatalf("a read %q", got)
				}
			}
		})
	}
}

// allocate tries one TURN allocation with a plain pion client.
func allocate(t *testing.T, srv *Server, user, pass string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: srv.Addr().String(),
		TURNServerAddr: srv.Addr().String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          testRealm,
		RTO:            50 * time.Millisecond,
		LoggerFactory:  newPionLogs(testLog(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		_ = relay.Close()
	}
	return err
}

func TestTURNAuth(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	now := time.Now()
	goodU, goodP := EphemeralCredentials(testSecret, "alpha", time.Hour, now)
	oldU, oldP := EphemeralCredentials(testSecret, "alpha", -time.Minute, now)
	forgedU, forgedP := EphemeralCredentials("other secret", "alpha", time.Hour, now)
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"static", "alice", "pw", true},
		{"ephemeral", goodU, goodP, true},
		{"wrong password", "alice", "nope", false},
		{"unknown user", "bob", "pw", false},
		{"expired ephemeral", oldU, oldP, false},
		{"ephemeral from another secret", forgedU, forgedP, false},
		{"ephemeral with a changed expiry", fmt.Sprint(now.Add(48*time.Hour).Unix()) + ":alpha", goodP, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := allocate(t, srv, tc.user, tc.pass)
			if tc.ok && err != nil {
				t.Fatalf("allocation failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("allocation succeeded")
			}
		})
	}
}

// Links come and go on a long-lived socket: agents that gathered through
// the shared mux (host, srflx) and TURN leave nothing behind when closed.
func TestAgentChurnOnOpenSocket(t *testing.T) {
	srv := newServer(t)
	sk := listen(t, loopback())
	collect(t, sk)
	st := loopback()
	st.STUN = []string{stunURL(srv)}
	st.TURN = []iceserver.TURN{{URL: turnURL(srv), Username: "alice", Credential: "pw"}}
	// Warm up once so lazily started goroutines (mux worker, pools) exist.
	warm, err := sk.NewAgent(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gather(t, warm)
	_ = warm.GracefulClose()
	checkLeaks(t)
	for range 5 {
		a, err := sk.NewAgent(st, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cands := gather(t, a); len(ofType(cands, ice.CandidateTypeRelay)) != 1 {
			t.Errorf("candidates %v, want a relay one", cands)
		}
		if err := a.GracefulClose(); err != nil {
			t.Fatal(err)
		}
	}
}
