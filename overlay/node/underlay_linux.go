package node

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
)

// underlaySettle is how long the underlay must be quiet after a change
// before links restart: a DHCP renewal or an interface coming up is a burst
// of events.
const underlaySettle = 2 * time.Second

// watchUnderlay restarts the links when an address or the state of an
// interface other than the TAP and loopback changes.
func (n *Node) watchUnderlay(ctx context.Context) {
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
			pending = fmt.Sprintf("underlay interface %s %s", a.Name, map[bool]string{true: "up", false: "down"}[up])
			timer.Reset(underlaySettle)
		case <-timer.C:
			n.links.mgr.Restart(pending)
		}
	}
}

// isUp treats "unknown" as up: veths and TAPs often report it.
func isUp(a *netlink.LinkAttrs) bool {
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}
