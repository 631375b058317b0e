package igmp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config is the querier configuration of both protocols. Zero durations,
// Version and Robustness take the RFC defaults (RFC 3376 §8, RFC 3810 §9):
// version 3, query interval 125 s, query response interval 10 s, last member
// query interval 1 s, robustness 2.
type Config struct {
	// Version is the IGMP version the querier speaks, 1..3. MLD follows:
	// 3 → MLDv2, 1 or 2 → MLDv1.
	Version int
	// QueryInterval is the time between general queries; startup queries
	// go at a quarter of it. At most 31744 s, the largest QQIC.
	QueryInterval time.Duration
	// QueryResponseInterval is the Max Resp Time of general queries: at
	// least 100 ms and below QueryInterval. A value beyond what a version's
	// code holds (IGMPv2 25.5 s, IGMPv3 3174.4 s, MLDv1 65.535 s) is sent
	// as the largest code: hosts then answer sooner than the router's
	// timers allow for, which is safe.
	QueryResponseInterval time.Duration
	// LastMemberQueryInterval is the Max Resp Time of group-specific and
	// group-and-source-specific queries and the time between their
	// retransmissions; at least 100 ms.
	LastMemberQueryInterval time.Duration
	// Robustness is the expected packet loss allowance, 1..100: the
	// startup and last-member query counts and the factor of every
	// membership timeout. Values above 7 are sent as QRV 0 (RFC 3376 §4.1.6).
	Robustness int

	// IPv4 is the source of IGMP queries. Linux (6.18, measured by
	// TestKernelQuerySources in igmp_linux_test.go) answers queries:
	//   - from another address of the TAP's subnet: yes;
	//   - from 0.0.0.0: yes (IGMP is exempt from its source check);
	//   - from the TAP's own address: NO, dropped as a martian source
	//     (unless net.ipv4.conf.*.accept_local=1);
	//   - from outside the subnet: only with rp_filter off.
	// The source MAC does not matter (even the TAP's own MAC works). So in
	// host mode use a spare address of the TAP's subnet, never the TAP's
	// own. Invalid (or 0.0.0.0) means queries go out from 0.0.0.0 and the
	// router defers to any other querier it hears.
	IPv4 netip.Addr
	// IPv6 is the link-local (fe80::/10) source of MLD queries. Linux
	// drops MLD queries whose source is not link-local (RFC 3810 §6.2),
	// even its own global address, and accepts any link-local source,
	// even the TAP's own. Invalid means no MLD querier: reports are still
	// tracked and the router defers to any other querier.
	IPv6 netip.Addr
	// MAC is the source MAC of query frames; frames read back with this
	// source are our own and are ignored. ipopd uses a virtual router MAC,
	// not the TAP's own.
	MAC net.HardwareAddr

	DisableIPv4, DisableIPv6 bool // ignore IGMP or MLD altogether
}

// Limits that keep a misbehaving host from growing the table without bound.
const (
	maxGroups  = 16384 // per family: topology.MaxNodeGroups, what the overlay carries of a node
	maxSources = 1024  // per group
)

func (c *Config) defaults() {
	if c.Version == 0 {
		c.Version = 3
	}
	if c.QueryInterval == 0 {
		c.QueryInterval = 125 * time.Second
	}
	if c.QueryResponseInterval == 0 {
		c.QueryResponseInterval = 10 * time.Second
	}
	if c.LastMemberQueryInterval == 0 {
		c.LastMemberQueryInterval = time.Second
	}
	if c.Robustness == 0 {
		c.Robustness = 2
	}
}

func (c *Config) validate() error {
	bad := func(what string, v any, allowed string) error {
		return fmt.Errorf("%w: %s %v; allowed: %s", ErrConfig, what, v, allowed)
	}
	switch {
	case c.Version < 1 || c.Version > 3:
		return bad("version", c.Version, "1..3")
	case c.QueryInterval < time.Second || c.QueryInterval > maxCode8*time.Second:
		return bad("query interval", c.QueryInterval, "1s..31744s")
	// A response interval below one unit of IGMP's 1/10 s would be sent
	// as code 0, which turns an IGMPv2 query into a v1 query.
	case c.QueryResponseInterval < 100*time.Millisecond || c.QueryResponseInterval >= c.QueryInterval:
		return bad("query response interval", c.QueryResponseInterval, "100ms up to the query interval")
	case c.LastMemberQueryInterval < 100*time.Millisecond || c.LastMemberQueryInterval > maxCode8*time.Second:
		return bad("last member query interval", c.LastMemberQueryInterval, "100ms..31744s")
	case c.Robustness < 1 || c.Robustness > 100:
		return bad("robustness", c.Robustness, "1..100")
	case c.IPv4.IsValid() && (!c.IPv4.Is4() || c.IPv4.IsMulticast() || c.IPv4 == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return bad("IPv4 query source", c.IPv4, "a unicast IPv4 address, or none")
	case c.IPv6.IsValid() && !c.IPv6.IsLinkLocalUnicast():
		return bad("IPv6 query source", c.IPv6, "a link-local address (fe80::/10), or none")
	case len(c.MAC) != 6 || c.MAC[0]&1 != 0:
		return bad("MAC", c.MAC, "a unicast Ethernet address")
	case c.DisableIPv4 && c.DisableIPv6:
		return bad("families", "none", "IPv4, IPv6 or both")
	}
	return nil
}
