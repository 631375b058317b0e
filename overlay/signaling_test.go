package overlay

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/pion/ice/v2"
)

func TestParseLinkMsg(t *testing.T) {
	good := []linkMsg{
		{Kind: kindOffer, Session: 1, Boot: 2, Ufrag: "abcd", Pwd: strings.Repeat("p", 22)},
		{Kind: kindAnswer, Session: 1, Boot: 3, Ufrag: "abcd", Pwd: strings.Repeat("p", 22)},
		{Kind: kindCand, Session: 1, Cand: "candidate:1 1 udp 2130706431 198.18.0.10 4000 typ host"},
		{Kind: kindKnock, Boot: 9},
		{Kind: kindBye, Session: 5},
		{Kind: kindBye, Session: 5, Why: byeUnneeded},
		{Kind: kindBye, Session: 5, Why: byeLeaving},
	}
	for _, m := range good {
		got, err := parseLinkMsg(m.marshal())
		if err != nil || *got != m {
			t.Errorf("round trip %+v: %+v, %v", m, got, err)
		}
	}
	bad := []string{
		``, `{`, `[]`, `{"kind":"hello"}`, `{"kind":"offer","session":1,"boot":1,"ufrag":"a"}`,
		`{"kind":"cand","session":0,"cand":"x"}`, `{"kind":"knock"}`, `{"kind":"bye"}`, `{"kind":"bye","session":1,"why":"bored"}`,
		`{"kind":"offer","session":1,"boot":1,"ufrag":"` + strings.Repeat("u", 300) + `","pwd":"p"}`,
		`{"kind":"cand","session":1,"cand":"` + strings.Repeat("c", 600) + `"}`,
		strings.Repeat(" ", 3000),
	}
	for _, s := range bad {
		if _, err := parseLinkMsg([]byte(s)); !errors.Is(err, ErrBadSignal) {
			t.Errorf("parseLinkMsg(%.40q) = %v, want ErrBadSignal", s, err)
		}
	}
}

func FuzzParseLinkMsg(f *testing.F) {
	f.Add([]byte(`{"kind":"offer","session":1,"boot":2,"ufrag":"abcd","pwd":"pppppppppppppppppppppp"}`))
	f.Add([]byte(`{"kind":"cand","session":1,"cand":"candidate:1 1 udp 2130706431 198.18.0.10 4000 typ host"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseLinkMsg(b)
		if err != nil {
			return
		}
		// What parses must re-encode and parse to the same message.
		again, err := parseLinkMsg(m.marshal())
		if err != nil || *again != *m {
			t.Fatalf("re-parse of %+v: %+v, %v", m, again, err)
		}
	})
}

// FuzzControlHandlers feeds control payloads (what an authenticated but
// misbehaving member could send, direct or routed) to link control's
// handlers: the ring's Neighbors, link signaling and link proofs. Nothing may panic;
// what parses is handed to the loop.
func FuzzControlHandlers(f *testing.F) {
	f.Add([]byte{dataplane.KindSignal, 1, '{', '}'})
	f.Add(append([]byte{dataplane.KindSignal, 0}, `{"kind":"knock","boot":7}`...))
	f.Add([]byte{dataplane.KindRing, 1, 0x10, 0})
	f.Add(append([]byte{dataplane.KindProof, 1, proofMine}, make([]byte, trust.ProofLen)...))
	f.Add(append([]byte{dataplane.KindProof, 1, proofHeld, 1}, make([]byte, trust.ProofLen)...))
	self := nodeid.ID(sha256.Sum256([]byte("self")))
	from := nodeid.ID(sha256.Sum256([]byte("peer")))
	m := NewManager(Config{Identity: &identity.Identity{Peer: identity.Peer{ID: self}},
		Data: dataplane.New(dataplane.Config{Self: self, MTU: 1400, Directory: trust.NewDirectory(nil, "test", 0, nil)})})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // drop what the handlers post, so they never block
		for {
			select {
			case <-m.loop.Tasks():
			case <-stop:
				return
			}
		}
	}()
	f.Fuzz(func(t *testing.T, data []byte) {
		// data[0] is the kind, data[1]&1 says direct, the rest follows the kind.
		if len(data) < 2 {
			return
		}
		payload, direct := append([]byte{data[0]}, data[2:]...), data[1]&1 == 1
		_ = m.onRingMessage(from, payload, direct)
		_ = m.onSignalMessage(from, payload, direct)
		_ = m.onProofMessage(from, payload, direct)
	})
}

// TestUsableCandidate: a peer's candidates that name no address a peer
// can have are refused.
func TestUsableCandidate(t *testing.T) {
	for line, want := range map[string]bool{
		"candidate:1 1 udp 2130706431 198.18.0.10 4000 typ host":                                true,
		"candidate:1 1 udp 1694498815 198.18.1.1 4000 typ srflx raddr 10.0.0.2 rport 4000":      true,
		"candidate:1 1 udp 2130706431 fd00::1 4000 typ host":                                    true,
		"candidate:1 1 udp 2130706431 127.0.0.1 22 typ host":                                    false,
		"candidate:1 1 udp 2130706431 ::1 22 typ host":                                          false,
		"candidate:1 1 udp 2130706431 224.0.0.251 5353 typ host":                                false,
		"candidate:1 1 udp 2130706431 255.255.255.255 4000 typ host":                            false,
		"candidate:1 1 udp 2130706431 0.0.0.0 4000 typ host":                                    false,
		"candidate:1 1 udp 2130706431 198.18.0.10 0 typ host":                                   false,
		"candidate:1 1 tcp 2130706431 198.18.0.10 4000 typ host tcptype passive":                false,
		"candidate:1 1 udp 2130706431 ff02::1 4000 typ host":                                    false,
		"candidate:1 1 udp 2130706431 0a3f5b52-4ec1-4b0b-8a6c-8c9f4e2e2c10.local 4000 typ host": false,
	} {
		c, err := ice.UnmarshalCandidate(line)
		if err != nil {
			if want {
				t.Errorf("%s: %v", line, err)
			}
			continue
		}
		if got := usableCandidate(c, false); got != want {
			t.Errorf("usableCandidate(%s) = %v, want %v", line, got, want)
		}
	}
	c, _ := ice.UnmarshalCandidate("candidate:1 1 udp 2130706431 127.0.0.1 4000 typ host")
	if !usableCandidate(c, true) {
		t.Error("a loopback candidate refused although this node offers loopback (tests)")
	}
}

// A peer that knocks again each time its session ends (as it can at
// once: it only has to stop answering, or say bye) gets new sessions at
// the rate offers have, not one per knock: each costs an ICE agent.
func TestKnocksRateLimited(t *testing.T) {
	m, _, higher := signalingManager(t)
	const knocks = 20
	sessions := map[uint64]bool{}
	for i := range knocks {
		m.onSignal(higher, fmt.Appendf(nil, `{"kind":"knock","boot":%d}`, i+1), true)
		m.call(func() {
			if l := m.links[higher]; l != nil {
				sessions[l.session] = true
				m.down(l, "test: the peer went away")
			}
		})
	}
	if len(sessions) > offerBurst+1 || len(sessions) == 0 {
		t.Errorf("%d knocks in a burst made %d sessions, want 1..%d", knocks, len(sessions), offerBurst+1)
	}
	if got, want := m.knockLimited.Load(), uint64(knocks-len(sessions)); got != want {
		t.Errorf("knock_rate_limited %d, want %d", got, want)
	}
}
