package nat

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v2"
)

func TestEphemeralCredentials(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	u, p := EphemeralCredentials("secret", "alpha", time.Hour, now)
	if u != "1700003600:alpha" {
		t.Errorf("username %q", u)
	}
	// Cross-check the password with pion's own REST API code: for a bare
	// expiry username both must agree.
	pu, pp, err := turn.GenerateLongTermCredentials("secret", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := ephemeralExpiry(pu)
	if !ok {
		t.Fatalf("pion username %q does not parse", pu)
	}
	if u2, p2 := EphemeralCredentials("secret", "", 0, exp); u2 != pu || p2 != pp {
		t.Errorf("EphemeralCredentials = %q/%q, pion says %q/%q", u2, p2, pu, pp)
	}
	if p == pp {
		t.Error("name did not change the password")
	}
}

// The auth handler on a fixed clock: valid until the expiry second, not at it.
func TestAuthHandlerExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := now
	h := authHandler(map[string]string{"alice": "pw"}, "secret", testLog(t), func() time.Time { return clock })
	u, p := EphemeralCredentials("secret", "alpha", time.Minute, now)
	key, ok := h(u, "r", nil)
	if !ok || string(key) != string(turn.GenerateAuthKey(u, "r", p)) {
		t.Fatal("fresh credential refused or wrong key")
	}
	clock = now.Add(time.Minute)
	if _, ok := h(u, "r", nil); ok {
		t.Error("credential accepted at its expiry")
	}
	if _, ok := h("alice", "r", nil); !ok {
		t.Error("static user refused")
	}
	for _, bad := range []string{"", "bob", ":alpha", "-5:alpha", "abc:alpha"} {
		if _, ok := h(bad, "r", nil); ok {
			t.Errorf("username %q accepted", bad)
		}
	}
	if _, ok := authHandler(nil, "", testLog(t), time.Now)(u, "r", nil); ok {
		t.Error("ephemeral accepted without a secret")
	}
}

func TestPermissionHandler(t *testing.T) {
	strict := permissionHandler(false, testLog(t))
	for ip, want := range map[string]bool{
		"198.18.0.7": true, "127.0.0.1": false, "0.0.0.0": false, "224.0.0.251": false, "255.255.255.255": false,
	} {
		if got := strict(nil, parseIP(t, ip)); got != want {
			t.Errorf("permission for %s = %t, want %t", ip, got, want)
		}
	}
	if !permissionHandler(true, testLog(t))(nil, parseIP(t, "127.0.0.1")) {
		t.Error("loopback refused although the relay is on loopback")
	}
}

func parseIP(t *testing.T, s string) net.IP {
	t.Helper()
	ip := net.ParseIP(s)
	if ip == nil {
		t.Fatalf("bad IP %q", s)
	}
	return ip
}

func TestNewServerConfig(t *testing.T) {
	for _, cfg := range []ServerConfig{
		{Listen: "127.0.0.1:0", RelayIP: ""},
		{Listen: "127.0.0.1:0", RelayIP: "::1"},
		{Listen: "127.0.0.1:0", RelayIP: "127.0.0.1", RelayBind: "nowhere"},
	} {
		if _, err := NewServer(cfg); !errors.Is(err, ErrServerConfig) {
			t.Errorf("NewServer(%+v) = %v, want ErrServerConfig", cfg, err)
		}
	}
	if _, err := NewServer(ServerConfig{Listen: "127.0.0.1:-1", RelayIP: "127.0.0.1"}); err == nil {
		t.Error("NewServer accepted a bad listen address")
	}
}
