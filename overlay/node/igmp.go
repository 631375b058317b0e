package node

import (
	"net"
	"net/netip"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// routerMAC is the querier's own MAC: locally administered, derived from
// the node ID, and not the TAP's (the kernel ignores frames that claim to
// come from its own interface address).
func routerMAC(id nodeid.ID) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x49, 0x50, id[0], id[1], id[2]}
}

// tapMAC is the TAP's own MAC: locally administered, unicast, derived
// from the node ID (40 bits of it), so it is the same after a restart:
// the neighbour caches of the kernels behind other nodes, which map this
// node's overlay addresses to it, stay right. (With the kernel's random
// MAC a restarted node was unreachable by unicast for up to 25 s, until
// those caches timed the old one out.) Its first byte differs from
// routerMAC's.
func tapMAC(id nodeid.ID) net.HardwareAddr {
	return net.HardwareAddr{0x0e, id[0], id[1], id[2], id[3], id[4]}
}

// linkLocalFor is the EUI-64 link-local address of mac (MLD queries must
// come from a link-local address, RFC 3810 §5.1.14).
func linkLocalFor(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

func igmpConfig(cfg *config.Config, id nodeid.ID) igmp.Config {
	mac := routerMAC(id)
	c := igmp.Config{
		Version: cfg.IGMP.Version, QueryInterval: cfg.IGMP.QueryInterval, QueryResponseInterval: cfg.IGMP.QueryResponseInterval,
		Robustness: cfg.IGMP.Robustness, LastMemberQueryInterval: cfg.IGMP.LastMemberQueryInterval,
		MAC: mac, IPv6: linkLocalFor(mac),
	}
	// IGMP queries go out from 0.0.0.0 (IPv4 left unset): the kernel drops
	// queries from the TAP's own address as martians, and any other address
	// of the overlay subnet may belong to another node. 0.0.0.0 defers to
	// any real querier (switch mode: the LAN's router wins, as it should);
	// in host mode there is none on the TAP, so ipopd is the querier.
	return c
}
