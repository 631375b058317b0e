package node

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// routerMAC is the querier's own MAC: locally administered, derived from
// the node ID, and not the TAP's (the kernel ignores frames that claim to
// come from its own interface address).
func routerMAC(id nodeid.ID) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x49, 0x50, id[0], id[1], id[2]}
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

func randomEpoch() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}

// groups renders the multicast plane for `ipopctl groups`. It runs on the
// plane's loop for a consistent view of the querier.
func (n *Node) groups() control.Groups {
	var out control.Groups
	names := map[nodeid.ID]string{}
	for _, l := range n.links.mgr.Peers().Links {
		if id, err := nodeid.Parse(l.NodeID); err == nil {
			names[id] = l.Name
		}
	}
	n.mcast.call(func() {
		now := time.Now()
		for _, q := range n.mcast.router.Queriers(now) {
			qs := control.QuerierStatus{Family: q.Family, Querier: q.Querier, Version: q.Version,
				OtherPresent: control.Duration(q.OtherQuerierPresent), NextQuery: control.Duration(q.NextQuery.Round(time.Second))}
			if q.OtherQuerier.IsValid() {
				qs.OtherQuerier = q.OtherQuerier.String()
			}
			out.Queriers = append(out.Queriers, qs)
		}
		st := n.mcast.state.Load()
		byGroup := map[netip.Addr]*control.GroupStatus{}
		get := func(g netip.Addr) *control.GroupStatus {
			if gs := byGroup[g]; gs != nil {
				return gs
			}
			gs := &control.GroupStatus{Group: g.String(), Remote: []control.Subscription{}}
			byGroup[g] = gs
			return gs
		}
		for _, g := range n.mcast.router.Groups(now) {
			if g.Filter.Empty() {
				continue
			}
			lg := &control.LocalGroup{Filter: g.Filter.String(), Compat: g.Compat, GroupTimer: control.Duration(g.GroupTimer.Round(time.Second))}
			if g.LastReporter.IsValid() {
				lg.LastReporter = g.LastReporter.String()
			}
			for _, s := range g.Sources {
				lg.Sources = append(lg.Sources, control.SourceTimer{Source: s.Addr.String(), Timer: control.Duration(s.Timer.Round(time.Second)), Forward: s.Forward})
			}
			get(g.Group).Local = lg
		}
		for _, g := range st.view.Groups() {
			gs := get(g)
			for _, sub := range st.view.Nodes(g) {
				id := sub.Node
				gs.Remote = append(gs.Remote, control.Subscription{Name: names[id], NodeID: id.String(),
					Filter: sub.Filter.String()})
			}
		}
		for _, g := range st.stats.groups() {
			c := st.stats.get(g)
			gs := get(g)
			gs.FwdFrames, gs.FwdBytes = c.fwdFrames.Load(), c.fwdBytes.Load()
			gs.DlvFrames, gs.DlvBytes = c.dlvFrames.Load(), c.dlvBytes.Load()
		}
		for _, gs := range byGroup {
			out.Groups = append(out.Groups, *gs)
		}
	})
	sort.Slice(out.Groups, func(i, j int) bool {
		x, _ := netip.ParseAddr(out.Groups[i].Group)
		y, _ := netip.ParseAddr(out.Groups[j].Group)
		return x.Less(y)
	})
	return out
}
