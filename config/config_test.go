package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// clearEnv removes every variable the loaders read, so a developer's own
// IPOPD_* settings cannot change a test's outcome. t.Setenv restores them.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "IPOPD_") || strings.HasPrefix(name, "IPOP_RENDEZVOUS_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// baseDoc is a small valid config as a tree, for tests to change one key.
func baseDoc() map[string]any {
	return map[string]any{
		"network":    "demo",
		"node":       map[string]any{"name": "alpha", "cert": "alpha.crt", "key": "alpha.key", "ca": "ca.crt"},
		"tap":        map[string]any{"address": "10.254.0.1/16"},
		"rendezvous": []any{"198.18.0.10:7000"},
		"stun":       []any{"stun:198.18.0.10:3478"},
		"turn": []any{map[string]any{
			"url": "turn:198.18.0.10:3478?transport=udp", "username": "u", "credential": "p",
		}},
	}
}

// setKey sets a dotted key in a tree, making sections as needed.
func setKey(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

func marshal(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	want := &Config{
		Tap: TapConfig{Name: "ipop0", Mode: ModeHost, MTU: 1400},
		ICE: ICEConfig{Port: 0},
		IGMP: IGMPConfig{Version: 3, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second,
			Robustness: 2, LastMemberQueryInterval: time.Second},
		Topology: TopologyConfig{Successors: 2, Chords: 2,
			OnDemand: OnDemandConfig{Threshold: 1_000_000, Idle: 60 * time.Second, MaxLinks: 8}},
		Multicast: MulticastConfig{Fanout: 8, ReplicateMax: 4},
		Trust:     TrustConfig{RekeyInterval: 2 * time.Minute},
		Control:   ControlConfig{Socket: "/run/ipopd/ipopd.sock"},
		Log:       LogConfig{Level: slog.LevelInfo},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v\nwant %+v", got, want)
	}
	// No default may point at a server: the operator names every one.
	if d := Default(); d.Rendezvous != nil || d.STUN != nil || d.TURN != nil || d.Metrics.Listen != "" {
		t.Errorf("Default() names a server: %+v", d)
	}
	r := DefaultRendezvous()
	if r.Listen != "0.0.0.0:7000" || r.TURN.Listen != "" || r.TURN.Realm != "ipopd" || r.Log.Level != slog.LevelInfo {
		t.Errorf("DefaultRendezvous() = %+v", r)
	}
}

func TestLoadFileMinimal(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "ipopd.yaml", marshal(t, baseDoc()))
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Network != "demo" || c.Tap.Address != netip.MustParsePrefix("10.254.0.1/16") {
		t.Errorf("loaded %+v", c)
	}
	if c.Tap.MTU != 1400 || c.IGMP.QueryInterval != 125*time.Second {
		t.Errorf("defaults not kept: %+v", c)
	}
	want := []iceserver.TURN{{URL: "turn:198.18.0.10:3478?transport=udp", Username: "u", Credential: "p"}}
	if !reflect.DeepEqual(c.TURN, want) {
		t.Errorf("TURN = %+v, want %+v", c.TURN, want)
	}
}

func TestMissingFile(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := LoadFile(path)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrNotFound only", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%q does not name the path", err)
	}
}

func TestNoFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("IPOPD_NETWORK", "demo")
	t.Setenv("IPOPD_NODE_NAME", "alpha")
	t.Setenv("IPOPD_NODE_CERT", "a.crt")
	t.Setenv("IPOPD_NODE_KEY", "a.key")
	t.Setenv("IPOPD_NODE_CA", "ca.crt")
	t.Setenv("IPOPD_TAP_ADDRESS6", "fd54::1/64")
	c, err := LoadFile("")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" || c.Node.Cert != "a.crt" || !c.Tap.Address6.IsValid() {
		t.Errorf("loaded %+v", c)
	}
}

func TestFlagsNameTheirKeys(t *testing.T) {
	fs := pflag.NewFlagSet("ipopd", pflag.ContinueOnError)
	Flags(fs)
	want := map[string]string{
		"network": "network", "node-name": "node.name", "tap-name": "tap.name", "tap-mode": "tap.mode",
		"tap-address": "tap.address", "tap-address6": "tap.address6", "tap-mtu": "tap.mtu",
		"tap-bridge": "tap.bridge", "control-socket": "control.socket",
		"metrics-listen": "metrics.listen", "log-level": "log.level",
	}
	for name, key := range want {
		f := fs.Lookup(name)
		if f == nil || !strings.Contains(f.Usage, "key "+key+")") {
			t.Errorf("--%s: %+v does not name key %s", name, f, key)
		}
	}
	if f := fs.ShorthandLookup("c"); f == nil || f.Name != "config" {
		t.Errorf("-c is %+v", f)
	}
}

// TestSamples loads the shipped samples and checks the ipopd one shows every
// key of the contract, so it cannot fall behind.
func TestSamples(t *testing.T) {
	clearEnv(t)
	c, err := LoadFile("../deploy/ipopd.sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../deploy/ipopd.sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDoc("sample", data, newSchema(c.fields()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range c.fields() {
		if _, ok := d.lines[f.key]; !ok {
			t.Errorf("ipopd.sample.yaml lacks key %s", f.key)
		}
	}

	fs := pflag.NewFlagSet("ipop-rendezvous", pflag.ContinueOnError)
	RendezvousFlags(fs)
	if err := fs.Parse([]string{"-c", "../deploy/rendezvous.sample.yaml"}); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRendezvous(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.TURN.Listen == "" || len(r.TURN.Users) == 0 {
		t.Errorf("rendezvous sample does not show TURN: %+v", r.TURN)
	}
}
