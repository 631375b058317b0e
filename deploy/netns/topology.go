package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
)

// NATKind selects the mapping behaviour of a NAT router (RFC 4787).
type NATKind int

const (
	// EndpointIndependent is plain MASQUERADE: one external port for all
	// destinations of a local socket (and, free ports permitting, the same
	// port number as inside).
	EndpointIndependent NATKind = iota
	// EndpointDependent is MASQUERADE --random-fully: a new random external
	// port for every destination, the "symmetric" NAT that defeats plain
	// STUN hole punching.
	EndpointDependent
)

func (k NATKind) String() string {
	switch k {
	case EndpointIndependent:
		return "endpoint-independent"
	case EndpointDependent:
		return "endpoint-dependent"
	}
	return "NATKind(" + strconv.Itoa(int(k)) + ")"
}

var (
	publicBase = netip.MustParseAddr("198.18.0.0")
	bridgeAddr = netip.MustParsePrefix("198.18.0.1/15")
)

const (
	publicBits = 15
	maxPublic  = 1<<(32-publicBits) - 2 // offsets up to the broadcast address
	inetLabel  = "inet"
	bridge     = "br0"
)

// lan is the LAN behind a NAT router: 10.k.0.0/24 on the router's bridge eth1.
type lan struct {
	k     int
	next  int // last octet of the next host
	ports int // bridge ports made so far, named p1, p2, ...
}

// Internet returns the namespace "inet" that holds bridge br0, the public
// 198.18.0.0/15 segment, creating it on first use. br0 has 198.18.0.1 so the
// segment can be pinged or captured from inet while debugging.
func (tb *Testbed) Internet() (*Host, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.internetLocked()
}

func (tb *Testbed) internetLocked() (*Host, error) {
	if tb.inet != nil {
		return tb.inet, nil
	}
	h, err := tb.addNamespaceLocked(inetLabel)
	if err != nil {
		return nil, err
	}
	// STP stays off (the default), so ports forward as soon as they are up.
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", bridgeAddr.String(), "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if err := ip(append([]string{"-n", h.NS}, args...)...); err != nil {
			return nil, err
		}
	}
	h.Addr = bridgeAddr.Addr()
	tb.inet = h
	return h, nil
}

// AddPublicHost adds a namespace whose eth0 is on the Internet bridge with
// the next free address 198.18.0.N/15, N counting from 10.
func (tb *Testbed) AddPublicHost(name string) (*Host, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	h, err := tb.addNamespaceLocked(name)
	if err != nil {
		return nil, err
	}
	h.Addr, err = tb.attachPublicLocked(h)
	return h, err
}

// attachPublicLocked plugs h's eth0 into br0 and gives it the next public
// address. The bridge port in inet is named after the address offset.
func (tb *Testbed) attachPublicLocked(h *Host) (netip.Addr, error) {
	inet, err := tb.internetLocked()
	if err != nil {
		return netip.Addr{}, err
	}
	n := tb.nextPub
	if n >= maxPublic {
		return netip.Addr{}, ErrExhausted
	}
	tb.nextPub++
	port := "v" + strconv.Itoa(n)
	if err := tb.vethLocked(inet, port, h, "eth0"); err != nil {
		return netip.Addr{}, err
	}
	if err := ip("-n", inet.NS, "link", "set", port, "master", bridge); err != nil {
		return netip.Addr{}, err
	}
	addr := addrAt(publicBase, n)
	return addr, ip("-n", h.NS, "addr", "add", netip.PrefixFrom(addr, publicBits).String(), "dev", "eth0")
}

// AddNATHost adds a NAT router labelled name+"-nat" and a host labelled name
// behind it. The router's eth0 is public (router.WAN; Addr is its LAN side
// 10.k.0.1), its eth1 is a bridge for the LAN 10.k.0.0/24, it forwards, and
// it masquerades everything leaving eth0 as kind says. The host is 10.k.0.2
// with a default route via the router; its WAN is the router's public address.
func (tb *Testbed) AddNATHost(name string, kind NATKind) (host, router *Host, err error) {
	if kind != EndpointIndependent && kind != EndpointDependent {
		return nil, nil, fmt.Errorf("netns: unknown %v", kind)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.nextLAN > 255 {
		return nil, nil, ErrExhausted
	}
	router, err = tb.addNamespaceLocked(name + "-nat")
	if err != nil {
		return nil, nil, err
	}
	if router.WAN, err = tb.attachPublicLocked(router); err != nil {
		return nil, nil, err
	}
	l := &lan{k: tb.nextLAN, next: 2}
	tb.nextLAN++
	router.Addr = netip.AddrFrom4([4]byte{10, byte(l.k), 0, 1})
	for _, args := range [][]string{
		{"link", "add", "eth1", "type", "bridge"},
		{"addr", "add", router.Addr.String() + "/24", "dev", "eth1"},
		{"link", "set", "eth1", "up"},
	} {
		if err := ip(append([]string{"-n", router.NS}, args...)...); err != nil {
			return nil, nil, err
		}
	}
	// /proc/sys/net belongs to the namespace of the thread that opens it.
	err = router.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("netns: %s: ip_forward: %w", router.NS, err)
	}
	// -w waits for the xtables lock, which iptables-legacy shares across
	// namespaces and so across test packages running in parallel.
	masq := []string{"iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"}
	if kind == EndpointDependent {
		masq = append(masq, "--random-fully")
	}
	if _, err := router.Run(masq...); err != nil {
		return nil, nil, err
	}
	router.lan = l
	host, err = tb.addBehindLocked(router, name)
	return host, router, err
}

// AddHostBehind adds a host labelled name on router's LAN, at the next free
// address 10.k.0.N/24, with a default route via the router.
func (tb *Testbed) AddHostBehind(router *Host, name string) (*Host, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if router.tb != tb || router.lan == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRouter, router)
	}
	return tb.addBehindLocked(router, name)
}

func (tb *Testbed) addBehindLocked(router *Host, name string) (*Host, error) {
	l := router.lan
	if l.next > 254 {
		return nil, ErrExhausted
	}
	h, err := tb.addNamespaceLocked(name)
	if err != nil {
		return nil, err
	}
	h.Addr = netip.AddrFrom4([4]byte{10, byte(l.k), 0, byte(l.next)})
	h.WAN = router.WAN
	l.next++
	l.ports++
	port := "p" + strconv.Itoa(l.ports)
	if err := tb.vethLocked(router, port, h, "eth0"); err != nil {
		return nil, err
	}
	if err := ip("-n", router.NS, "link", "set", port, "master", "eth1"); err != nil {
		return nil, err
	}
	if err := ip("-n", h.NS, "addr", "add", h.Addr.String()+"/24", "dev", "eth0"); err != nil {
		return nil, err
	}
	return h, ip("-n", h.NS, "route", "add", "default", "via", router.Addr.String())
}

// addrAt returns base plus n.
func addrAt(base netip.Addr, n int) netip.Addr {
	b := base.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(n))
	return netip.AddrFrom4(b)
}
