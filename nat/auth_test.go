package nat

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
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
	h := authHandler(map[string]string{"alice": "pw"}, "secret", 64, &ServerStats{}, testRefusals(t), func() time.Time { return clock })
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
	if _, ok := authHandler(nil, "", 64, &ServerStats{}, testRefusals(t), time.Now)(u, "r", nil); ok {
		t.Error("ephemeral accepted without a secret")
	}
}

func testRefusals(t *testing.T) *refusals { return newRefusals(testLog(t), time.Nanosecond) }

func TestPermissionHandler(t *testing.T) {
	relay := parseIP(t, "198.18.0.10")
	own := []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("127.0.0.1")}
	stats := &ServerStats{}
	strict := permissionHandler(relay, own, nil, stats, testRefusals(t))
	for ip, want := range map[string]bool{
		"198.18.0.7": true, "127.0.0.1": false, "0.0.0.0": false, "224.0.0.251": false, "255.255.255.255": false,
		"10.1.0.2": false, "172.20.0.1": false, "192.168.1.1": false, "169.254.1.1": false, "100.64.0.1": false,
		"198.18.0.10": true,  // the relay address itself: relay-to-relay paths
		"198.18.1.10": false, // another address of this host
	} {
		if got := strict(nil, parseIP(t, ip)); got != want {
			t.Errorf("permission for %s = %t, want %t", ip, got, want)
		}
	}
	if stats.PeerRefused.Load() != 10 {
		t.Errorf("refusals counted %d, want 10", stats.PeerRefused.Load())
	}
	if !permissionHandler(parseIP(t, "127.0.0.1"), nil, nil, stats, testRefusals(t))(nil, parseIP(t, "127.0.0.1")) {
		t.Error("loopback refused although the relay is on loopback")
	}
	allow := permissionHandler(relay, own, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, stats, testRefusals(t))
	if !allow(nil, parseIP(t, "10.1.0.2")) || allow(nil, parseIP(t, "10.2.0.2")) {
		t.Error("allow_peers not honoured")
	}
}

// TestAllocationQuota: a user gets at most its quota of client addresses
// at once; an address seen before keeps working, and old ones age out.
func TestAllocationQuota(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	stats := &ServerStats{}
	h := authHandler(map[string]string{"alice": "pw"}, "", 3, stats, testRefusals(t), func() time.Time { return clock })
	addr := func(port int) net.Addr { return &net.UDPAddr{IP: net.IPv4(198, 18, 0, 5), Port: port} }
	for port := range 3 {
		if _, ok := h("alice", "r", addr(port)); !ok {
			t.Fatalf("allocation %d refused", port)
		}
	}
	if _, ok := h("alice", "r", addr(9)); ok || stats.QuotaRefused.Load() != 1 {
		t.Error("fourth allocation accepted")
	}
	if _, ok := h("alice", "r", addr(1)); !ok {
		t.Error("a refresh from a known address refused")
	}
	clock = clock.Add(quotaWindow + time.Second)
	if _, ok := h("alice", "r", addr(9)); !ok {
		t.Error("quota never frees")
	}
}

// FuzzTURNUsername: whatever user name a client sends, the auth path
// neither panics nor accepts one it cannot derive a key for.
func FuzzTURNUsername(f *testing.F) {
	u, _ := EphemeralCredentials("secret", "alpha", time.Hour, time.Now())
	for _, s := range []string{u, "alice", "", ":", "99999999999999999999:x", "1:" + strings.Repeat("x", 1000)} {
		f.Add(s)
	}
	h := authHandler(map[string]string{"alice": "pw"}, "secret", 64, &ServerStats{}, newRefusals(slog.New(slog.DiscardHandler), time.Second), time.Now)
	f.Fuzz(func(t *testing.T, user string) {
		key, ok := h(user, "ipopd", &net.UDPAddr{IP: net.IPv4(198, 18, 0, 5), Port: 1})
		if ok && len(key) != 16 {
			t.Fatalf("key of %d bytes for %q", len(key), user)
		}
		if ok && user != "alice" {
			if exp, valid := ephemeralExpiry(user); !valid || !time.Now().Before(exp) {
				t.Fatalf("accepted %q", user)
			}
		}
	})
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
