package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipopd/ipopd/nat/iceserver"
)

func TestEnvOverride(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "ipopd.yaml", marshal(t, baseDoc()))
	t.Setenv("IPOPD_TAP_NAME", "ipop7")
	t.Setenv("IPOPD_IGMP_QUERY_INTERVAL", "60s")
	t.Setenv("IPOPD_TOPOLOGY_ON_DEMAND_THRESHOLD", "5Mbit")
	t.Setenv("IPOPD_RENDEZVOUS", "198.18.0.10:7000, 198.18.0.11:7000")
	t.Setenv("IPOPD_TURN", `[{"url":"turns:198.18.0.12:5349","username":"x","credential":"y"}]`)
	t.Setenv("IPOPD_TAP_MTU", "1280")
	t.Setenv("IPOPD_ICE_INTERFACES", "eth0,eth1")
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tap.Name != "ipop7" || c.IGMP.QueryInterval != time.Minute || c.Topology.OnDemand.Threshold != 5*Mbit || c.Tap.MTU != 1280 {
		t.Errorf("env not applied: %+v", c)
	}
	if want := []string{"198.18.0.10:7000", "198.18.0.11:7000"}; !reflect.DeepEqual(c.Rendezvous, want) {
		t.Errorf("Rendezvous = %q, want %q", c.Rendezvous, want)
	}
	if want := []string{"eth0", "eth1"}; !reflect.DeepEqual(c.ICE.Interfaces, want) {
		t.Errorf("ICE.Interfaces = %q, want %q", c.ICE.Interfaces, want)
	}
	if want := []iceserver.TURN{{URL: "turns:198.18.0.12:5349", Username: "x", Credential: "y"}}; !reflect.DeepEqual(c.TURN, want) {
		t.Errorf("TURN = %+v, want %+v", c.TURN, want)
	}

	// An empty variable clears what the file set.
	t.Setenv("IPOPD_STUN", "")
	if c, err = LoadFile(path); err != nil || len(c.STUN) != 0 {
		t.Errorf("IPOPD_STUN= left %q (err %v)", c.STUN, err)
	}
}

func TestEnvTypo(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "ipopd.yaml", marshal(t, baseDoc()))
	t.Setenv("IPOPD_TAP_MDOE", "switch")
	_, err := LoadFile(path)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `did you mean "IPOPD_TAP_MODE"?`) {
		t.Fatalf("err = %v", err)
	}
	// The config-path variable is not a key but is known.
	os.Unsetenv("IPOPD_TAP_MDOE")
	t.Setenv("IPOPD_CONFIG", path)
	if _, err := LoadFile(path); err != nil {
		t.Fatal(err)
	}
}

// TestPrecedence sets keys in several layers at once: flag > env > file > default.
func TestPrecedence(t *testing.T) {
	clearEnv(t)
	doc := baseDoc()
	setKey(doc, "tap.name", "file0")     // file, env and flag
	setKey(doc, "log.level", "warn")     // file and env
	setKey(doc, "metrics.listen", ":91") // file only
	path := writeFile(t, t.TempDir(), "ipopd.yaml", marshal(t, doc))
	t.Setenv("IPOPD_TAP_NAME", "env0")
	t.Setenv("IPOPD_LOG_LEVEL", "debug")
	t.Setenv("IPOPD_TAP_MODE", "host") // env and an unchanged flag

	fs := pflag.NewFlagSet("ipopd", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"-c", path, "--tap-name", "flag0", "--tap-mtu", "1500"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"tap.name (flag)", c.Tap.Name, "flag0"},
		{"tap.mtu (flag)", c.Tap.MTU, 1500},
		{"log.level (env)", c.Log.Level, slog.LevelDebug},
		{"tap.mode (env)", c.Tap.Mode, ModeHost},
		{"metrics.listen (file)", c.Metrics.Listen, ":91"},
		{"control.socket (default)", c.Control.Socket, "/run/ipopd/ipopd.sock"},
		{"igmp.robustness (default)", c.IGMP.Robustness, 2},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	// Errors name the layer the bad value came from.
	if err := fs.Set("tap-mtu", "100"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fs); err == nil || !strings.Contains(err.Error(), "flag --tap-mtu: tap.mtu: 100 is out of range") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigPath(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", marshal(t, baseDoc()))
	docB := baseDoc()
	setKey(docB, "network", "bee")
	b := writeFile(t, dir, "b.yaml", marshal(t, docB))

	fs := pflag.NewFlagSet("ipopd", pflag.ContinueOnError)
	Flags(fs)
	if got := fs.Lookup("config").DefValue; got != "/etc/ipopd/ipopd.yaml" {
		t.Errorf("--config default = %q", got)
	}
	t.Setenv("IPOPD_CONFIG", b)
	if c, err := Load(fs); err != nil || c.Network != "bee" || c.File != b {
		t.Fatalf("IPOPD_CONFIG ignored: %+v, %v", c, err)
	}
	if err := fs.Parse([]string{"--config", a}); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(fs); err != nil || c.Network != "demo" || c.File != a {
		t.Fatalf("--config does not beat IPOPD_CONFIG: %+v, %v", c, err)
	}
}

func TestRelativePaths(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	doc := baseDoc()
	setKey(doc, "node.cert", "alpha.crt")
	setKey(doc, "node.key", "../keys/alpha.key")
	setKey(doc, "node.ca", "/etc/ipopd/ca.crt")
	path := writeFile(t, dir, "etc/ipopd.yaml", marshal(t, doc))
	t.Setenv("IPOPD_NODE_CA", "rel/ca.crt") // from the shell: relative to where it runs

	// Load with a relative path, as `ipopd -c etc/ipopd.yaml` would.
	t.Chdir(dir)
	c, err := LoadFile("etc/ipopd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Dir(path)
	if want := filepath.Join(etc, "alpha.crt"); c.Node.Cert != want {
		t.Errorf("cert = %q, want %q", c.Node.Cert, want)
	}
	if want := filepath.Join(dir, "keys/alpha.key"); c.Node.Key != want {
		t.Errorf("key = %q, want %q", c.Node.Key, want)
	}
	if c.Node.CA != "rel/ca.crt" {
		t.Errorf("ca from env = %q, want it untouched", c.Node.CA)
	}
}

// TestReload is SIGHUP: Load again on the same FlagSet after the file changed.
func TestReload(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	doc := baseDoc()
	setKey(doc, "topology.chords", 3)
	path := writeFile(t, dir, "ipopd.yaml", marshal(t, doc))
	fs := pflag.NewFlagSet("ipopd", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"-c", path, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	first, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}

	setKey(doc, "topology.chords", 5)
	setKey(doc, "log.level", "debug") // the flag still wins
	writeFile(t, dir, "ipopd.yaml", marshal(t, doc))
	second, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || first.Topology.Chords != 3 {
		t.Errorf("reload changed the first Config: %+v", first)
	}
	if second.Topology.Chords != 5 || second.Log.Level != slog.LevelError {
		t.Errorf("reloaded chords=%d level=%v, want 5 ERROR", second.Topology.Chords, second.Log.Level)
	}

	// A bad file on reload is an error; the caller keeps the old Config.
	writeFile(t, dir, "ipopd.yaml", "tap: {mtu: 1}\n")
	if _, err := Load(fs); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad reload: err = %v", err)
	}
}
