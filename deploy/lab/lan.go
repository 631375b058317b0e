package lab

import (
	"fmt"

	"github.com/ipopd/ipopd/deploy/netns"
)

// LAN is a Linux bridge (br0) inside a node's namespace, with plain hosts
// (no ipopd) on veth ports: the LAN segment a switch-mode node bridges into
// the overlay.
type LAN struct {
	tb    *netns.Testbed
	Gate  *netns.Host // the namespace holding br0 (and the switch-mode node)
	Hosts []*netns.Host
	ports int
}

// AddLAN makes br0 in gate's namespace (multicast snooping on, as on a real
// switch, so LAN hosts only get the groups they joined).
func AddLAN(tb *netns.Testbed, gate *netns.Host) (*LAN, error) {
	for _, args := range [][]string{
		{"ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "1"},
		{"ip", "link", "set", "br0", "up"},
	} {
		if _, err := gate.Run(args...); err != nil {
			return nil, err
		}
	}
	return &LAN{tb: tb, Gate: gate}, nil
}

// AddHost puts a new namespace on the LAN with eth0 addressed addr (IPv4
// CIDR) and addr6 (IPv6 CIDR, no DAD).
func (l *LAN) AddHost(name, addr, addr6 string) (*netns.Host, error) {
	h, err := l.tb.AddNamespace(name)
	if err != nil {
		return nil, err
	}
	l.ports++
	port := fmt.Sprintf("lan%d", l.ports)
	if err := l.tb.Veth(h, "eth0", l.Gate, port); err != nil {
		return nil, err
	}
	if _, err := l.Gate.Run("ip", "link", "set", port, "master", "br0"); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"ip", "addr", "add", addr, "dev", "eth0"},
		{"ip", "addr", "add", addr6, "dev", "eth0", "nodad"},
	} {
		if _, err := h.Run(args...); err != nil {
			return nil, err
		}
	}
	l.Hosts = append(l.Hosts, h)
	return h, nil
}
