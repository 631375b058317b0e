// Package config loads ipopd's and ipop-rendezvous's configuration from a
// YAML file, IPOPD_* (or IPOP_RENDEZVOUS_*) environment variables and
// command-line flags, in that order of rising precedence over the defaults,
// and validates it. The keys are the contract in DESIGN.md; a bad entry stops
// loading with one line naming the key, the value and what is allowed
// (*KeyError). Loading again (SIGHUP) yields a fresh value; callers swap in
// the parts they own only when the whole new Config is valid.
package config

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// DefaultPath is where ipopd looks for its config when --config and
// IPOPD_CONFIG are not given.
const DefaultPath = "/etc/ipopd/ipopd.yaml"

// Mode is how the TAP meets the local network.
type Mode string

const (
	// ModeHost puts this host alone on the overlay; the TAP has an address.
	ModeHost Mode = "host"
	// ModeSwitch joins the TAP to a Linux bridge, putting a LAN segment on
	// the overlay.
	ModeSwitch Mode = "switch"
)

// Config is ipopd's whole configuration. Field comments give the YAML key.
type Config struct {
	Network    string           // network
	Node       NodeConfig       // node
	Tap        TapConfig        // tap
	Rendezvous []string         // rendezvous: host:port of signaling servers
	STUN       []string         // stun: "stun:host:port" URIs
	TURN       []iceserver.TURN // turn
	ICE        ICEConfig        // ice
	IGMP       IGMPConfig       // igmp
	Topology   TopologyConfig   // topology
	Multicast  MulticastConfig  // multicast
	Trust      TrustConfig      // trust
	Control    ControlConfig    // control
	Metrics    MetricsConfig    // metrics
	Log        LogConfig        // log

	// File is the path the config was loaded from ("" if none).
	File string

	// sources maps a key to where its value came from, so Validate can name
	// the file line, variable or flag to fix. Nil for a Config built in code.
	sources map[string]string
}

// NodeConfig identifies this node. Relative paths in a config file are
// resolved against that file's directory when loading.
type NodeConfig struct {
	Name string // node.name
	Cert string // node.cert: this node's certificate (PEM)
	Key  string // node.key: its private key (PEM)
	CA   string // node.ca: the network's CA certificate (PEM)
}

// TapConfig is the TAP device. A zero netip.Prefix means "not set".
type TapConfig struct {
	Name     string       // tap.name
	Mode     Mode         // tap.mode
	Address  netip.Prefix // tap.address: IPv4
	Address6 netip.Prefix // tap.address6: IPv6
	MTU      int          // tap.mtu
	Bridge   string       // tap.bridge: switch mode only
}

// ICEConfig tunes candidate gathering.
type ICEConfig struct {
	Port       int      // ice.port: UDP port of the shared socket; 0 picks one
	Interfaces []string // ice.interfaces: gather only on these; empty = all
}

// IGMPConfig holds the querier's timers (RFC 3376 section 8, RFC 3810
// section 9); MLD uses the same values.
type IGMPConfig struct {
	Version                 int           // igmp.version
	QueryInterval           time.Duration // igmp.query_interval
	QueryResponseInterval   time.Duration // igmp.query_response_interval
	Robustness              int           // igmp.robustness
	LastMemberQueryInterval time.Duration // igmp.last_member_query_interval
}

// TopologyConfig sizes the ring.
type TopologyConfig struct {
	Successors int            // topology.successors
	Chords     int            // topology.chords
	OnDemand   OnDemandConfig // topology.on_demand
}

// MulticastConfig is how groups' frames are spread (DESIGN.md: trees).
type MulticastConfig struct {
	// Fanout bounds the copies of a frame any node sends per group on a
	// distribution tree (multicast.fanout).
	Fanout int
	// ReplicateMax: groups with at most this many subscriber nodes are
	// sent by the source to each of them; larger ones go down a tree. 0:
	// always trees (multicast.replicate_max).
	ReplicateMax int
}

// OnDemandConfig is the policy for direct links added under load.
type OnDemandConfig struct {
	Threshold Rate          // topology.on_demand.threshold: add a link above this
	Idle      time.Duration // topology.on_demand.idle: drop it after this long below
	MaxLinks  int           // topology.on_demand.max_links
}

// TrustConfig is how links rotate their keys and which nodes are revoked.
type TrustConfig struct {
	RekeyInterval time.Duration // trust.rekey_interval: data keys move on at least this often
	Revoked       string        // trust.revoked: the CA-signed revocation list (ipopctl ca revoke); "" for none
}

// ControlConfig is the local control socket used by ipopctl.
type ControlConfig struct {
	Socket string // control.socket
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	Listen string // metrics.listen: host:port; "" turns metrics off
}

// LogConfig sets logging.
type LogConfig struct {
	Level slog.Level // log.level
}

// Default returns the built-in configuration. It names no server: a node
// must be told its rendezvous, STUN and TURN servers.
func Default() *Config {
	return &Config{
		Tap: TapConfig{Name: "ipop0", Mode: ModeHost, MTU: 1400},
		IGMP: IGMPConfig{
			Version:                 3,
			QueryInterval:           125 * time.Second,
			QueryResponseInterval:   10 * time.Second,
			Robustness:              2,
			LastMemberQueryInterval: time.Second,
		},
		Topology: TopologyConfig{
			Successors: 2,
			Chords:     2,
			OnDemand:   OnDemandConfig{Threshold: Mbit, Idle: 60 * time.Second, MaxLinks: 8},
		},
		Multicast: MulticastConfig{Fanout: 8, ReplicateMax: 4},
		Trust:     TrustConfig{RekeyInterval: 2 * time.Minute},
		Control:   ControlConfig{Socket: "/run/ipopd/ipopd.sock"},
		Log:       LogConfig{Level: slog.LevelInfo},
	}
}

// fields lists every contract key in the order Validate checks them, with
// the field it fills and the text shown as "allowed" when its value is bad.
func (c *Config) fields() []field {
	const name = nodeid.NameRule
	const ifname = "an interface name of 1..15 bytes without '/', ':' or whitespace"
	return []field{
		{"network", &c.Network, name, false},
		{"node.name", &c.Node.Name, name, false},
		{"node.cert", &c.Node.Cert, "a path to this node's certificate (PEM)", true},
		{"node.key", &c.Node.Key, "a path to this node's private key (PEM)", true},
		{"node.ca", &c.Node.CA, "a path to the network's CA certificate (PEM)", true},
		{"tap.name", &c.Tap.Name, ifname, false},
		{"tap.mode", &c.Tap.Mode, "host, switch", false},
		{"tap.address", &c.Tap.Address, "an IPv4 address with prefix length, e.g. 10.254.0.1/16 (IPv6 goes in tap.address6)", false},
		{"tap.address6", &c.Tap.Address6, "an IPv6 address with prefix length, e.g. fd54::1/64 (IPv4 goes in tap.address)", false},
		{"tap.mtu", &c.Tap.MTU, "576..9000", false},
		{"tap.bridge", &c.Tap.Bridge, "the Linux bridge the TAP joins in switch mode; " + ifname, false},
		{"rendezvous", &c.Rendezvous, "host:port entries, e.g. 198.18.0.10:7000", false},
		{"stun", &c.STUN, "stun:host:port or stuns:host:port URIs", false},
		{"turn", &c.TURN, "entries {url: turn:host:port[?transport=udp|tcp] or turns:..., username, credential}", false},
		{"ice.port", &c.ICE.Port, "0..65535 (0 picks a free port)", false},
		{"ice.interfaces", &c.ICE.Interfaces, "interface names of 1..15 bytes without '/', ':' or whitespace; empty for all", false},
		{"igmp.version", &c.IGMP.Version, "1..3", false},
		{"igmp.query_interval", &c.IGMP.QueryInterval, "a duration in 1s..31744s, e.g. 125s", false},
		{"igmp.query_response_interval", &c.IGMP.QueryResponseInterval, "a duration in 100ms..3174.4s (..25.5s for version 2) below igmp.query_interval, e.g. 10s", false},
		{"igmp.robustness", &c.IGMP.Robustness, "1..10", false},
		{"igmp.last_member_query_interval", &c.IGMP.LastMemberQueryInterval, "a duration in 100ms..3174.4s (..25.5s for version 2), e.g. 1s", false},
		{"topology.successors", &c.Topology.Successors, "1..16", false},
		{"topology.chords", &c.Topology.Chords, "0..16", false},
		{"topology.on_demand.threshold", &c.Topology.OnDemand.Threshold, "a rate above 0 in bits per second, e.g. 1Mbit, 500kbit", false},
		{"topology.on_demand.idle", &c.Topology.OnDemand.Idle, "a duration above 0, e.g. 60s", false},
		{"topology.on_demand.max_links", &c.Topology.OnDemand.MaxLinks, "0..1024", false},
		{"multicast.fanout", &c.Multicast.Fanout, "1..64", false},
		{"multicast.replicate_max", &c.Multicast.ReplicateMax, "0..1024 (0: always trees)", false},
		{"trust.rekey_interval", &c.Trust.RekeyInterval, "a duration in 1s..24h, e.g. 2m", false},
		{"trust.revoked", &c.Trust.Revoked, "a path to the network's revocation list (ipopctl ca revoke), or \"\" for none", true},
		{"control.socket", &c.Control.Socket, "an absolute path", false},
		{"metrics.listen", &c.Metrics.Listen, "host:port (host may be empty), or \"\" to turn metrics off", false},
		{"log.level", &c.Log.Level, "debug, info, warn, error", false},
	}
}
