package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/vishvananda/netlink"
)

// underlaySettle is how long the underlay must be quiet after a change
// before links restart: a DHCP renewal or an interface coming up is a burst
// of events.
const underlaySettle = 2 * time.Second

// watchUnderlay tells link control when the underlay changed in a way
// that can matter to links: an address added or removed, or an interface
// with addresses going up or down, on an interface ICE may use (not the
// TAP, loopback, ice.interfaces' exclusions, nor one without a global
// address, such as a bridge port or a container's veth coming up). Link
// control then restarts only the links whose local address is gone
// (overlay.Manager.UnderlayChanged); the others keep their paths.
func (n *Node) watchUnderlay(ctx context.Context, st nat.Settings) {
	addrs := make(chan netlink.AddrUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.AddrSubscribe(addrs, done); err != nil {
		n.log.Warn("not watching underlay addresses", "err", err)
		return
	}
	if err := netlink.LinkSubscribe(links, done); err != nil {
		n.log.Warn("not watching underlay links", "err", err)
		return
	}
	tapIndex := 0
	if l, err := netlink.LinkByName(n.dev.Name()); err == nil {
		tapIndex = l.Attrs().Index
	}
	operUp := map[int]bool{} // last known state of each interface
	if ls, err := netlink.LinkList(); err == nil {
		for _, l := range ls {
			operUp[l.Attrs().Index] = isUp(l.Attrs())
		}
	}
	var pending string
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-addrs:
			if !ok {
				return
			}
			if u.LinkIndex == tapIndex || u.LinkAddress.IP.IsLoopback() || u.LinkAddress.IP.IsLinkLocalUnicast() {
				continue
			}
			if l, err := netlink.LinkByIndex(u.LinkIndex); err == nil && !st.AllowsInterface(l.Attrs().Name) {
				continue
			}
			verb := "removed"
			if u.NewAddr {
				verb = "added"
			}
			pending = fmt.Sprintf("underlay address %s %s", u.LinkAddress.IP, verb)
			timer.Reset(underlaySettle)
		case u, ok := <-links:
			if !ok {
				return
			}
			a := u.Attrs()
			if a.Index == tapIndex || a.Flags&net.FlagLoopback != 0 {
				continue
			}
			up := isUp(a)
			if was, seen := operUp[a.Index]; seen && was == up {
				continue // an attribute changed, not the state
			}
			operUp[a.Index] = up
			if !st.AllowsInterface(a.Name) || !hasGlobalAddr(u.Link) {
				continue // no candidate can be on it
			}
			pending = fmt.Sprintf("underlay interface %s %s", a.Name, map[bool]string{true: "up", false: "down"}[up])
			timer.Reset(underlaySettle)
		case <-timer.C:
			if have, err := nat.HostAddrs(); err == nil && n.links.client != nil {
				n.links.client.LocalAddrGone(func(a netip.Addr) bool { return have[a] })
			}
			n.links.mgr.UnderlayChanged(pending)
		}
	}
}

// hasGlobalAddr reports whether link has an address a candidate could
// use (not link-local).
func hasGlobalAddr(link netlink.Link) bool {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return true // cannot tell: assume it matters
	}
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() && !a.IP.IsLoopback() {
			return true
		}
	}
	return false
}

// isUp treats "unknown" as up: veths and TAPs often report it.
func isUp(a *netlink.LinkAttrs) bool {
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}
