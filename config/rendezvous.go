package config

import (
	"log/slog"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// DefaultRendezvousPath is where ipop-rendezvous looks for its config.
const DefaultRendezvousPath = "/etc/ipopd/rendezvous.yaml"

// RendezvousConfig is ipop-rendezvous's configuration: signaling over
// mutual TLS with the network's CA, and optionally STUN and TURN.
type RendezvousConfig struct {
	Network string // network
	Cert    string // cert: the server's certificate (PEM)
	Key     string // key: its private key (PEM)
	CA      string // ca: the network's CA certificate (PEM)
	Listen  string // listen: signaling host:port
	Revoked string // revoked: the network's revocation list (ipopctl ca revoke); "" for none
	TURN    RendezvousTURN
	Metrics MetricsConfig // metrics.listen: Prometheus endpoint, "" for none
	Log     LogConfig

	// File is the path the config was loaded from ("" if none).
	File string

	sources map[string]string // as in Config
}

// RendezvousTURN is the built-in STUN/TURN server. An empty Listen turns
// both off. Users holds static long-term credentials; Secret enables
// time-limited ones as coturn's use-auth-secret makes them.
type RendezvousTURN struct {
	Listen  string            // turn.listen: UDP host:port
	RelayIP string            // turn.relay_ip: address relayed traffic leaves from, as clients reach it
	Realm   string            // turn.realm
	Users   map[string]string // turn.users: name → password
	Secret  string            // turn.secret
	// AllowPeers are peer prefixes relayed to although private,
	// link-local or the server's own (denied by default).
	AllowPeers     []string // turn.allow_peers
	MaxAllocations int      // turn.max_allocations: per user
}

// DefaultRendezvous returns the built-in rendezvous configuration.
func DefaultRendezvous() *RendezvousConfig {
	return &RendezvousConfig{
		Listen: "0.0.0.0:7000",
		TURN:   RendezvousTURN{Realm: "ipopd", MaxAllocations: 64},
		Log:    LogConfig{Level: slog.LevelInfo},
	}
}

func (c *RendezvousConfig) fields() []field {
	const listen = "host:port, e.g. 0.0.0.0:7000"
	return []field{
		{"network", &c.Network, "a name matching [a-z0-9][a-z0-9._-]{0,62}", false},
		{"cert", &c.Cert, "a path to the server's certificate (PEM)", true},
		{"key", &c.Key, "a path to the server's private key (PEM)", true},
		{"ca", &c.CA, "a path to the network's CA certificate (PEM)", true},
		{"listen", &c.Listen, listen, false},
		{"revoked", &c.Revoked, "a path to the network's revocation list (ipopctl ca revoke), or \"\" for none", true},
		{"turn.listen", &c.TURN.Listen, "host:port for STUN/TURN over UDP, e.g. 0.0.0.0:3478, or \"\" for none", false},
		{"turn.relay_ip", &c.TURN.RelayIP, "the IP address relayed traffic uses, as clients reach it", false},
		{"turn.realm", &c.TURN.Realm, "a non-empty realm, e.g. ipopd", false},
		{"turn.users", &c.TURN.Users, "name: password pairs; names non-empty without ':'", false},
		{"turn.secret", &c.TURN.Secret, "a shared secret for time-limited credentials (coturn use-auth-secret)", false},
		{"turn.allow_peers", &c.TURN.AllowPeers, "CIDR prefixes relayed to although private, link-local or this host's own, e.g. 10.20.0.0/16", false},
		{"turn.max_allocations", &c.TURN.MaxAllocations, "1..100000 allocations per user", false},
		{"metrics.listen", &c.Metrics.Listen, "host:port (host may be empty), or \"\" to turn metrics off", false},
		{"log.level", &c.Log.Level, "debug, info, warn, error", false},
	}
}

var rendezvousAllowed = allowedOf(DefaultRendezvous().fields())

// rendezvous has no flags for turn.users or turn.secret: secrets on a
// command line are visible to every user through ps.
var rendezvous = loader{
	envPrefix:   "IPOP_RENDEZVOUS",
	pathEnv:     "IPOP_RENDEZVOUS_CONFIG",
	defaultPath: DefaultRendezvousPath,
	flags: []flagSpec{
		{"network", "network", "overlay network name", false},
		{"cert", "cert", "server certificate (PEM)", false},
		{"key", "key", "server private key (PEM)", false},
		{"ca", "ca", "network CA certificate (PEM)", false},
		{"listen", "listen", "signaling host:port", false},
		{"turn-listen", "turn.listen", "STUN/TURN UDP host:port; empty for none", false},
		{"turn-relay-ip", "turn.relay_ip", "IP address relayed traffic uses", false},
		{"turn-realm", "turn.realm", "TURN realm", false},
		{"log-level", "log.level", "log level: debug, info, warn or error", false},
	},
}

// RendezvousFlags registers --config/-c and the override flags on fs.
func RendezvousFlags(fs *pflag.FlagSet) { rendezvous.register(fs) }

// LoadRendezvous is Load for ipop-rendezvous: variables are IPOP_RENDEZVOUS_*
// (IPOP_RENDEZVOUS_TURN_USERS takes a JSON object), the file is
// IPOP_RENDEZVOUS_CONFIG or DefaultRendezvousPath.
func LoadRendezvous(fs *pflag.FlagSet) (*RendezvousConfig, error) {
	path := rendezvous.path(fs)
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return loadRendezvousBytes(path, data, fs)
}

func loadRendezvousBytes(name string, data []byte, fs *pflag.FlagSet) (*RendezvousConfig, error) {
	c := DefaultRendezvous()
	sources, err := rendezvous.load(c.fields(), name, data, fs)
	if err != nil {
		return nil, err
	}
	c.File, c.sources = name, sources
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate reports the first problem in c as a *KeyError wrapping ErrInvalid.
func (c *RendezvousConfig) Validate() error {
	v := &checker{sources: c.sources, allowed: rendezvousAllowed}
	v.name("network", c.Network)
	v.nonEmpty("cert", c.Cert)
	v.nonEmpty("key", c.Key)
	v.nonEmpty("ca", c.CA)
	v.hostPort("listen", c.Listen, false)
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen, false)
	}
	if t := &c.TURN; t.Listen != "" {
		v.hostPort("turn.listen", t.Listen, false)
		if a, err := netip.ParseAddr(t.RelayIP); err != nil || a.IsUnspecified() {
			v.fail("turn.relay_ip", quote(t.RelayIP), "is not a unicast IP address, needed when turn.listen is set")
		}
		v.nonEmpty("turn.realm", t.Realm)
		if len(t.Users) == 0 && t.Secret == "" {
			// Without either, every allocation fails authentication: a
			// server that looks up but relays nothing.
			v.failAllowed("turn.users", "{}", "is empty and so is turn.secret",
				"at least one user, or a secret, when turn.listen is set")
		}
		names := make([]string, 0, len(t.Users))
		for name := range t.Users {
			names = append(names, name)
		}
		sort.Strings(names) // first problem must not depend on map order
		for _, name := range names {
			switch {
			case name == "" || strings.Contains(name, ":"):
				v.fail("turn.users", quote(name), "is not a user name")
			case t.Users[name] == "":
				v.fail("turn.users["+name+"]", `""`, "is an empty password")
			}
		}
		for i, p := range t.AllowPeers {
			if _, err := netip.ParsePrefix(p); err != nil {
				v.fail(indexed("turn.allow_peers", i), quote(p), "is not a CIDR prefix")
			}
		}
		v.intRange("turn.max_allocations", t.MaxAllocations, 1, 100_000)
	}
	v.level("log.level", c.Log.Level)
	return v.result()
}
