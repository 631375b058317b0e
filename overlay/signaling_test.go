package overlay

import (
	"errors"
	"strings"
	"testing"
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
