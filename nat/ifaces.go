package nat

import (
	"fmt"
	"net"
	"net/netip"
	"path"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// ifaceRule decides which interfaces (and addresses) may become host
// candidates. It is built once from Settings at Listen.
type ifaceRule struct {
	only     []string // if not empty, the only allowed names (or patterns)
	exclude  []string // never allowed, even if listed in only
	loopback bool     // loopback interfaces and 127/8, ::1 addresses allowed
}

func newIfaceRule(s Settings) (ifaceRule, error) {
	for _, p := range append(s.Interfaces[:len(s.Interfaces):len(s.Interfaces)], s.Exclude...) {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return ifaceRule{}, fmt.Errorf("nat: interface pattern %q: %w", p, path.ErrBadPattern)
		}
	}
	return ifaceRule{only: s.Interfaces, exclude: s.Exclude, loopback: s.IncludeLoopback}, nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// allowsName is the name part of the rule; it is also the agent's
// InterfaceFilter.
func (r ifaceRule) allowsName(name string) bool {
	if matchAny(r.exclude, name) {
		return false
	}
	return len(r.only) == 0 || matchAny(r.only, name)
}

// filterInterfaces returns the interfaces the rule allows, as copies that
// keep only allowed addresses. It never modifies ifs (stdnet caches them).
func (r ifaceRule) filterInterfaces(ifs []*transport.Interface) []*transport.Interface {
	out := make([]*transport.Interface, 0, len(ifs))
	for _, ifc := range ifs {
		if !r.allowsName(ifc.Name) || (!r.loopback && ifc.Flags&net.FlagLoopback != 0) {
			continue
		}
		cp := transport.NewInterface(ifc.Interface)
		addrs, _ := ifc.Addrs() // an interface without addresses stays, empty
		for _, a := range addrs {
			if ip := addrIP(a); ip != nil && ip.IsLoopback() && !r.loopback {
				continue
			}
			cp.AddAddress(a)
		}
		out = append(out, cp)
	}
	return out
}

func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.IPNet:
		return a.IP
	case *net.IPAddr:
		return a.IP
	}
	return nil
}

// hostIPv4s lists the IPv4 addresses the UDP mux will offer as host
// candidates, mirroring pion's own enumeration (interface up, IPv4).
func hostIPv4s(ifs []*transport.Interface) []net.IP {
	var ips []net.IP
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ip := addrIP(a).To4(); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

// filteredNet is the host network as pion sees it, minus the interfaces the
// rule leaves out. The UDP mux on 0.0.0.0 enumerates interfaces through its
// Net, not through the agent's InterfaceFilter, so filtering must happen
// here or the TAP's overlay address would become a host candidate.
type filteredNet struct {
	transport.Net
	ifs []*transport.Interface // filtered once at construction
}

// newFilteredNet filters n's interfaces; a nil n is the host's network.
func newFilteredNet(r ifaceRule, n transport.Net) (*filteredNet, error) {
	if n == nil {
		sn, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("nat: enumerate interfaces: %w", err)
		}
		n = sn
	}
	all, err := n.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("nat: enumerate interfaces: %w", err)
	}
	return &filteredNet{Net: n, ifs: r.filterInterfaces(all)}, nil
}

// Interfaces implements transport.Net.
func (n *filteredNet) Interfaces() ([]*transport.Interface, error) { return n.ifs, nil }

// InterfaceByIndex implements transport.Net over the filtered list.
func (n *filteredNet) InterfaceByIndex(index int) (*transport.Interface, error) {
	for _, ifc := range n.ifs {
		if ifc.Index == index {
			return ifc, nil
		}
	}
	return nil, fmt.Errorf("%w: index=%d", transport.ErrInterfaceNotFound, index)
}

// InterfaceByName implements transport.Net over the filtered list.
func (n *filteredNet) InterfaceByName(name string) (*transport.Interface, error) {
	for _, ifc := range n.ifs {
		if ifc.Name == name {
			return ifc, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", transport.ErrInterfaceNotFound, name)
}

// AllowsInterface reports whether the interface called name may give
// host candidates under s (Interfaces, Exclude): a change elsewhere does
// not concern the links. Patterns are checked at Listen; a bad one here
// allows everything.
func (s Settings) AllowsInterface(name string) bool {
	r, err := newIfaceRule(s)
	return err != nil || r.allowsName(name)
}

// HostAddrs returns the addresses (without zones) of this host's
// interfaces that are up, in its network namespace.
func HostAddrs() (map[netip.Addr]bool, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("nat: interfaces: %w", err)
	}
	have := map[netip.Addr]bool{}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				have[p.Addr().Unmap().WithZone("")] = true
			}
		}
	}
	return have, nil
}
