package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfig has one row per way a config can be wrong. Each must stop
// loading with one line that wraps ErrInvalid and names the key and value.
func TestBadConfig(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		set  map[string]any    // keys changed in baseDoc
		raw  string            // or the whole file
		env  map[string]string // variables set for the row
		want []string          // substrings of the message: key, value, ...
	}{
		{name: "bad YAML has line", raw: "network: demo\nnode:\n  name: a\n   cert: b\n", want: []string{"x.yaml:4:", "invalid YAML", "mapping values"}},
		{name: "bad YAML flow", raw: "network: demo\nnode: {name: a\n", want: []string{"x.yaml:", "invalid YAML"}},
		{name: "bad YAML indentation", raw: "network: demo\n  node: x\n", want: []string{"x.yaml:2:", "invalid YAML"}},
		{name: "top level not a mapping", raw: "- a\n", want: []string{"(top level)", "is not a mapping"}},
		{name: "unknown top key", raw: "netwrok: demo\n", want: []string{`unknown key "netwrok"`, `did you mean "network"?`}},
		{name: "unknown nested key", set: map[string]any{"tap.mdoe": "host"}, want: []string{`unknown key "tap.mdoe"; did you mean "tap.mode"?`}},
		{name: "unknown deep key", set: map[string]any{"topology.on_demand.max_link": 3}, want: []string{`"topology.on_demand.max_link"`, `"topology.on_demand.max_links"`}},
		{name: "unknown key far from any", set: map[string]any{"igmp.zzzzzzzz": 1}, want: []string{`unknown key "igmp.zzzzzzzz"; allowed: keys version,`}},
		{name: "unknown key in turn entry", raw: "turn: [{url: 'turn:198.18.0.1', usrname: u}]\n", want: []string{`"turn[0].usrname"`, `did you mean "turn[0].username"?`}},
		{name: "duplicate key", raw: "tap:\n  mtu: 1400\n  mtu: 1500\n", want: []string{"x.yaml:3:", "tap.mtu", `"1500"`, "line 2"}},
		{name: "section not a mapping", set: map[string]any{"tap": "ipop0"}, want: []string{"tap", `"ipop0"`, "is not a mapping"}},
		{name: "list not a list", set: map[string]any{"turn": "x"}, want: []string{"turn", `"x"`, "is not a list"}},
		{name: "mapping for a value", set: map[string]any{"tap.mtu": map[string]any{"a": 1}}, want: []string{"tap.mtu", "{...}"}},
		{name: "wrong type mtu", set: map[string]any{"tap.mtu": "abc"}, want: []string{"tap.mtu", `"abc"`, "not an integer", "576..9000"}},
		{name: "bad CIDR", set: map[string]any{"tap.address": "10.0.0.300/16"}, want: []string{"tap.address", `"10.0.0.300/16"`}},
		{name: "address without length", set: map[string]any{"tap.address": "10.254.0.1"}, want: []string{"tap.address", `"10.254.0.1"`}},
		{name: "IPv6 in address", set: map[string]any{"tap.address": "fd54::1/64"}, want: []string{"tap.address", `"fd54::1/64"`, "not an IPv4 prefix"}},
		{name: "IPv4 in address6", set: map[string]any{"tap.address6": "10.254.0.1/16"}, want: []string{"tap.address6", `"10.254.0.1/16"`, "not an IPv6 prefix"}},
		{name: "mtu low", set: map[string]any{"tap.mtu": 100}, want: []string{"tap.mtu: 100 is out of range; allowed: 576..9000"}},
		{name: "mtu high", set: map[string]any{"tap.mtu": 9001}, want: []string{"tap.mtu", "9001"}},
		{name: "address6 with small mtu", set: map[string]any{"tap.address6": "fd54::1/64", "tap.mtu": 1000}, want: []string{"tap.mtu", "1000", "1280"}},
		{name: "unknown mode", set: map[string]any{"tap.mode": "hub"}, want: []string{"tap.mode", `"hub"`, "allowed: host, switch"}},
		{name: "tap name too long", set: map[string]any{"tap.name": "abcdefghijklmnop"}, want: []string{"tap.name", `"abcdefghijklmnop"`, "15 bytes"}},
		{name: "tap name slash", set: map[string]any{"tap.name": "ip/0"}, want: []string{"tap.name", `"ip/0"`}},
		{name: "tap name space", set: map[string]any{"tap.name": "ip 0"}, want: []string{"tap.name", `"ip 0"`}},
		{name: "bridge name bad", set: map[string]any{"tap.bridge": "br 0"}, want: []string{"tap.bridge", `"br 0"`}},
		{name: "switch without bridge", set: map[string]any{"tap.mode": "switch"}, want: []string{"tap.bridge", `""`, "switch mode"}},
		{name: "host without address", set: map[string]any{"tap.address": ""}, want: []string{"tap.address", `""`, "host mode"}},
		{name: "duration does not parse", set: map[string]any{"igmp.query_interval": "fast"}, want: []string{"igmp.query_interval", `"fast"`, "not a duration"}},
		{name: "duration without unit", set: map[string]any{"topology.on_demand.idle": 60}, want: []string{"topology.on_demand.idle", `"60"`, "unit"}},
		{name: "rate does not parse", set: map[string]any{"topology.on_demand.threshold": "fast"}, want: []string{"topology.on_demand.threshold", `"fast"`}},
		{name: "rate in bytes", set: map[string]any{"topology.on_demand.threshold": "1MB"}, want: []string{"topology.on_demand.threshold", `"1MB"`, "8Mbit"}},
		{name: "response not below query", set: map[string]any{"igmp.query_interval": "20s", "igmp.query_response_interval": "20s"}, want: []string{"igmp.query_response_interval", "20s", "igmp.query_interval"}},
		{name: "response too long for v2", set: map[string]any{"igmp.version": 2, "igmp.query_response_interval": "30s"}, want: []string{"igmp.query_response_interval", "30s", "25.5s"}},
		{name: "igmp version 0", set: map[string]any{"igmp.version": 0}, want: []string{"igmp.version: 0", "1..3"}},
		{name: "igmp version 4", set: map[string]any{"igmp.version": 4}, want: []string{"igmp.version: 4"}},
		{name: "robustness 0", set: map[string]any{"igmp.robustness": 0}, want: []string{"igmp.robustness: 0", "1..10"}},
		{name: "robustness 11", set: map[string]any{"igmp.robustness": 11}, want: []string{"igmp.robustness: 11"}},
		{name: "last member interval 0", set: map[string]any{"igmp.last_member_query_interval": "0s"}, want: []string{"igmp.last_member_query_interval", "0s"}},
		{name: "rendezvous without port", set: map[string]any{"rendezvous": []any{"198.18.0.10"}}, want: []string{"rendezvous[0]", `"198.18.0.10"`, "host:port"}},
		{name: "rendezvous without host", set: map[string]any{"rendezvous": []any{"198.18.0.10:7000", ":7000"}}, want: []string{"rendezvous[1]", `":7000"`}},
		{name: "rendezvous bad port", set: map[string]any{"rendezvous": []any{"198.18.0.10:http"}}, want: []string{"rendezvous[0]", `"198.18.0.10:http"`}},
		{name: "stun not a URI", set: map[string]any{"stun": []any{"198.18.0.10:3478"}}, want: []string{"stun[0]", `"198.18.0.10:3478"`}},
		{name: "turn URI in stun", set: map[string]any{"stun": []any{"turn:198.18.0.10:3478"}}, want: []string{"stun[0]", `"turn:198.18.0.10:3478"`, "scheme turn"}},
		{name: "stun URI in turn", set: map[string]any{"turn": []any{map[string]any{"url": "stun:198.18.0.10", "username": "u", "credential": "p"}}}, want: []string{"turn[0].url", `"stun:198.18.0.10"`}},
		{name: "turn bad transport", set: map[string]any{"turn": []any{map[string]any{"url": "turn:198.18.0.10?transport=sctp", "username": "u", "credential": "p"}}}, want: []string{"turn[0].url", `"turn:198.18.0.10?transport=sctp"`}},
		{name: "turn without username", set: map[string]any{"turn": []any{map[string]any{"url": "turn:198.18.0.10", "credential": "p"}}}, want: []string{"turn[0].username", `""`, "is empty"}},
		{name: "turn without credential", set: map[string]any{"turn": []any{map[string]any{"url": "turn:198.18.0.10", "username": "u"}}}, want: []string{"turn[0].credential", `""`}},
		{name: "ice port negative", set: map[string]any{"ice.port": -1}, want: []string{"ice.port: -1", "0..65535"}},
		{name: "ice port high", set: map[string]any{"ice.port": 65536}, want: []string{"ice.port: 65536"}},
		{name: "ice interface bad", set: map[string]any{"ice.interfaces": []any{"eth0", "a/b"}}, want: []string{"ice.interfaces[1]", `"a/b"`}},
		{name: "successors 0", set: map[string]any{"topology.successors": 0}, want: []string{"topology.successors: 0", "1..16"}},
		{name: "successors 17", set: map[string]any{"topology.successors": 17}, want: []string{"topology.successors: 17"}},
		{name: "chords -1", set: map[string]any{"topology.chords": -1}, want: []string{"topology.chords: -1", "0..16"}},
		{name: "chords 17", set: map[string]any{"topology.chords": 17}, want: []string{"topology.chords: 17"}},
		{name: "fanout 0", set: map[string]any{"multicast.fanout": 0}, want: []string{"multicast.fanout: 0", "1..64"}},
		{name: "fanout 65", set: map[string]any{"multicast.fanout": 65}, want: []string{"multicast.fanout: 65"}},
		{name: "replicate_max -1", set: map[string]any{"multicast.replicate_max": -1}, want: []string{"multicast.replicate_max: -1", "0: always trees"}},
		{name: "max links high", set: map[string]any{"topology.on_demand.max_links": 1025}, want: []string{"topology.on_demand.max_links: 1025", "0..1024"}},
		{name: "max links negative", set: map[string]any{"topology.on_demand.max_links": -1}, want: []string{"topology.on_demand.max_links: -1"}},
		{name: "threshold zero", set: map[string]any{"topology.on_demand.threshold": "0"}, want: []string{"topology.on_demand.threshold: 0bit", "above 0"}},
		{name: "threshold negative", set: map[string]any{"topology.on_demand.threshold": "-1Mbit"}, want: []string{"topology.on_demand.threshold", `"-1Mbit"`, "negative"}},
		{name: "idle zero", set: map[string]any{"topology.on_demand.idle": "0s"}, want: []string{"topology.on_demand.idle: 0s", "above 0"}},
		{name: "idle negative", set: map[string]any{"topology.on_demand.idle": "-5s"}, want: []string{"topology.on_demand.idle: -5s"}},
		{name: "control socket empty", set: map[string]any{"control.socket": ""}, want: []string{"control.socket", `""`, "empty"}},
		{name: "control socket relative", set: map[string]any{"control.socket": "ipopd.sock"}, want: []string{"control.socket", `"ipopd.sock"`, "absolute"}},
		{name: "metrics not host:port", set: map[string]any{"metrics.listen": "9100"}, want: []string{"metrics.listen", `"9100"`, "host:port"}},
		{name: "log level", set: map[string]any{"log.level": "verbose"}, want: []string{"log.level", `"verbose"`, "debug, info, warn, error"}},
		{name: "network empty", set: map[string]any{"network": ""}, want: []string{"network", `""`, "is empty"}},
		{name: "network upper case", set: map[string]any{"network": "Demo"}, want: []string{"network", `"Demo"`, "[a-z0-9]"}},
		{name: "network too long", set: map[string]any{"network": long}, want: []string{"network", long}},
		{name: "node name empty", set: map[string]any{"node.name": ""}, want: []string{"node.name", `""`}},
		{name: "node name leading dash", set: map[string]any{"node.name": "-alpha"}, want: []string{"node.name", `"-alpha"`}},
		{name: "node cert empty", set: map[string]any{"node.cert": ""}, want: []string{"node.cert", `""`, "is empty"}},
		{name: "node key empty", set: map[string]any{"node.key": ""}, want: []string{"node.key", `""`}},
		{name: "node ca empty", set: map[string]any{"node.ca": ""}, want: []string{"node.ca", `""`}},
		{name: "env typo", env: map[string]string{"IPOPD_TAP_MDOE": "host"}, want: []string{`unknown variable "IPOPD_TAP_MDOE"; did you mean "IPOPD_TAP_MODE"?`}},
		{name: "env bad value", env: map[string]string{"IPOPD_TAP_MTU": "abc"}, want: []string{"env IPOPD_TAP_MTU: tap.mtu", `"abc"`}},
		{name: "env bad turn json", env: map[string]string{"IPOPD_TURN": `[{"url":"turn:x","usrname":"u"}]`}, want: []string{"env IPOPD_TURN: turn", "usrname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			content := tt.raw
			if content == "" {
				doc := baseDoc()
				for k, v := range tt.set {
					setKey(doc, k, v)
				}
				content = marshal(t, doc)
			}
			path := writeFile(t, t.TempDir(), "x.yaml", content)
			_, err := LoadFile(path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid\n%s", err, content)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") {
				t.Errorf("not one config: line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			var ke *KeyError
			if errors.As(err, &ke) && ke.Source != "env" && !strings.Contains(ke.Source, filepath.Base(path)) && !strings.HasPrefix(ke.Source, "env ") {
				t.Errorf("source %q names neither the file nor a variable", ke.Source)
			}
		})
	}
}

// TestValidateInCode checks a Config built in code: no source, same rules.
func TestValidateInCode(t *testing.T) {
	c := Default()
	c.Network, c.Node = "demo", NodeConfig{Name: "alpha", Cert: "a", Key: "b", CA: "c"}
	c.Tap.Address6 = mustPrefix(t, "fd54::1/64")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Tap.MTU = 100
	err := c.Validate()
	if got, want := err.Error(), "config: tap.mtu: 100 is out of range; allowed: 576..9000"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The first problem wins, in contract order.
	c.Network = ""
	if err := c.Validate(); !strings.Contains(err.Error(), "network") {
		t.Errorf("first problem: %v", err)
	}
}

func TestRendezvousBad(t *testing.T) {
	base := "network: demo\ncert: r.crt\nkey: r.key\nca: ca.crt\n"
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"unknown key", base + "turn: {relayip: 1.2.3.4}\n", nil, []string{`"turn.relayip"`, `did you mean "turn.relay_ip"?`}},
		{"bad listen", base + "listen: 7000\n", nil, []string{"listen", `"7000"`}},
		{"turn without relay ip", base + "turn: {listen: ':3478', users: {a: b}}\n", nil, []string{"turn.relay_ip", `""`}},
		{"turn without users", base + "turn: {listen: ':3478', relay_ip: 198.18.0.10}\n", nil, []string{"turn.users", "turn.secret"}},
		{"user with colon", base + "turn: {listen: ':3478', relay_ip: 198.18.0.10, users: {'a:b': c}}\n", nil, []string{"turn.users", `"a:b"`}},
		{"empty password", base + "turn: {listen: ':3478', relay_ip: 198.18.0.10, users: {alice: ''}}\n", nil, []string{"turn.users[alice]", `""`}},
		{"cert empty", "network: demo\n", nil, []string{"cert", `""`}},
		{"env typo", base, map[string]string{"IPOP_RENDEZVOUS_TURN_RELAYIP": "x"}, []string{`did you mean "IPOP_RENDEZVOUS_TURN_RELAY_IP"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := loadRendezvousBytes("r.yaml", []byte(tt.yaml), nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRendezvousLoad(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "rendezvous.yaml", "network: demo\ncert: r.crt\nkey: /k/r.key\nca: ca.crt\n"+
		"turn:\n  listen: ':3478'\n  relay_ip: 198.18.0.10\n  users: {Alice: pw}\n")
	t.Setenv("IPOP_RENDEZVOUS_CONFIG", path)
	t.Setenv("IPOP_RENDEZVOUS_TURN_REALM", "lab")
	r, err := LoadRendezvous(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.File != path || r.Cert != filepath.Join(dir, "r.crt") || r.Key != "/k/r.key" || r.Listen != "0.0.0.0:7000" {
		t.Errorf("loaded %+v", r)
	}
	// User names keep their case: viper would have lowercased them.
	if r.TURN.Users["Alice"] != "pw" || r.TURN.Realm != "lab" {
		t.Errorf("TURN = %+v", r.TURN)
	}
	t.Setenv("IPOP_RENDEZVOUS_TURN_USERS", `{"Bob":"x"}`)
	if r, err = LoadRendezvous(nil); err != nil || len(r.TURN.Users) != 1 || r.TURN.Users["Bob"] != "x" {
		t.Errorf("users from env: %+v, %v", r, err)
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
