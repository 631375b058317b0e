package nat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun"

	"github.com/ipopd/ipopd/nat/iceserver"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in     string
		scheme stun.SchemeType
		host   string
		port   int
		proto  stun.ProtoType
	}{
		{"stun:198.18.0.10:3478", stun.SchemeTypeSTUN, "198.18.0.10", 3478, stun.ProtoTypeUDP},
		{"stun:rv.example", stun.SchemeTypeSTUN, "rv.example", 3478, stun.ProtoTypeUDP},
		{"stuns:rv.example", stun.SchemeTypeSTUNS, "rv.example", 5349, stun.ProtoTypeTCP},
		{"turn:198.18.0.10:3478?transport=udp", stun.SchemeTypeTURN, "198.18.0.10", 3478, stun.ProtoTypeUDP},
		{"turn:rv.example?transport=tcp", stun.SchemeTypeTURN, "rv.example", 3478, stun.ProtoTypeTCP},
		{"turns:rv.example:443", stun.SchemeTypeTURNS, "rv.example", 443, stun.ProtoTypeTCP},
	} {
		u, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if u.Scheme != tc.scheme || u.Host != tc.host || u.Port != tc.port || u.Proto != tc.proto {
			t.Errorf("ParseURL(%q) = %+v", tc.in, u)
		}
	}
	for _, bad := range []string{"", "198.18.0.10:3478", "http://x", "stun://x:3478", "stun:x:0", "stun:x:99999",
		"stun:x?transport=udp", "turn:x?transport=sctp", "stun::3478"} {
		_, err := ParseURL(bad)
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", bad, err)
			continue
		}
		if bad != "" && !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name the URL", err)
		}
	}
}

func TestSettingsDefaults(t *testing.T) {
	s := Settings{}.withDefaults()
	if s.KeepaliveInterval != 2*time.Second || s.DisconnectedTimeout != 5*time.Second || s.FailedTimeout != 10*time.Second {
		t.Errorf("defaults %v %v %v", s.KeepaliveInterval, s.DisconnectedTimeout, s.FailedTimeout)
	}
	// A dead peer must be noticed within 15 s.
	if s.DisconnectedTimeout+s.FailedTimeout > 15*time.Second {
		t.Error("default timers exceed 15 s")
	}
	s = Settings{KeepaliveInterval: time.Second}.withDefaults()
	if s.KeepaliveInterval != time.Second {
		t.Error("withDefaults overrode a set value")
	}
}

func TestSettingsURLs(t *testing.T) {
	s := Settings{
		STUN: []string{"stun:127.0.0.1:3478"},
		TURN: []iceserver.TURN{{URL: "turn:127.0.0.1:3478", Username: "u", Credential: "p"}},
	}
	urls, err := s.urls([]iceserver.TURN{{URL: "turn:127.0.0.1:3479", Username: "e", Credential: "q"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(urls) != 3 || urls[1].Username != "u" || urls[2].Password != "q" || urls[0].Username != "" {
		t.Errorf("urls %+v", urls)
	}
	if len(s.TURN) != 1 {
		t.Error("urls appended to the Settings' own TURN slice")
	}
}
