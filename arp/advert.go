package arp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Role says what a host's Neighbor Advertisements told about it being an
// IPv6 router (the R flag, RFC 4861 §4.4). IPv4 hosts are RoleUnknown.
type Role uint8

const (
	// RoleUnknown: no NA seen yet (learned from an NS or an advert that
	// did not know either). NS for such a host are not answered locally.
	RoleUnknown Role = iota
	RoleHost
	RoleRouter
)

func (r Role) String() string {
	switch r {
	case RoleUnknown:
		return "unknown"
	case RoleHost:
		return "host"
	case RoleRouter:
		return "router"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Host is one address binding of an Advert.
type Host struct {
	IP   netip.Addr
	MAC  [6]byte
	Role Role // IPv6 only; RoleUnknown in Gone
}

// Advert is what a node tells its peers about its local hosts. It carries
// no sequence number: a lost delta costs at most a request that crosses
// the overlay (an unknown host) or a stale entry, until the next full
// advert, which the caller sends periodically and on every new link.
type Advert struct {
	Full  bool   // Hosts is the sender's complete list and replaces the last one
	Hosts []Host // bound (new, or changed MAC or Role)
	Gone  []Host // no longer local to the sender; always empty in a Full
}

// Wire layout of an Advert, integers big-endian, 6-byte header:
//
//	0  version  1  advertVersion (1)
//	1  flags    1  bit 0: full; other bits 0
//	2  nhosts   2  0..MaxHosts
//	4  ngone    2  0..MaxHosts; 0 in a full; nhosts+ngone ≥ 1 in a delta
//	6  hosts    nhosts records, strictly ascending by address
//	.  gone     ngone records, strictly ascending, none also in hosts
//
// Host record, 11 bytes for IPv4, 23 for IPv6:
//
//	0  flags  1  bit 0: IPv6 (a 16-byte address, else 4; never 4-in-6);
//	             bits 1-2: Role, IPv6 in hosts only, else 0; others 0
//	1  mac    6  unicast, not zero
//	7  ip     4|16  a host address (hostAddr: not unspecified, loopback,
//	             multicast, 0/8 or 255.255.255.255)
//
// Every advert has exactly one encoding, so a strict decoder is also a
// canonical one, and decoded memory is bounded by the input: counts are
// checked against the bytes left before anything is allocated.
const (
	advertVersion   = 1
	advertHeaderLen = 6
	advertFull      = 1 << 0
	recIPv6         = 1 << 0
	recRoleShift    = 1
	recRoleMask     = 3 << recRoleShift
	minRecordLen    = 1 + 6 + 4

	// MaxHosts bounds each list of an advert, hence a node's local hosts
	// (Table evicts the oldest beyond it): a /19 of IPv4 hosts, or about
	// 2000 dual-stack hosts with a few IPv6 addresses each; a list of
	// that many IPv6 hosts takes 184 KiB. The 16-bit counts leave room to
	// raise it.
	MaxHosts = 8192
)

// Size returns the length of a's encoding.
func (a *Advert) Size() int {
	n := advertHeaderLen
	for _, l := range [][]Host{a.Hosts, a.Gone} {
		for _, h := range l {
			n += 1 + 6 + h.IP.BitLen()/8
		}
	}
	return n
}

// MarshalBinary encodes a. It refuses what UnmarshalBinary would refuse,
// so nothing sent can be dropped by a strict peer.
func (a *Advert) MarshalBinary() ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, advertHeaderLen, a.Size())
	b[0] = advertVersion
	if a.Full {
		b[1] = advertFull
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(a.Hosts)))
	binary.BigEndian.PutUint16(b[4:], uint16(len(a.Gone)))
	for _, l := range [][]Host{a.Hosts, a.Gone} {
		for _, h := range l {
			f := byte(h.Role) << recRoleShift
			if h.IP.Is6() {
				f |= recIPv6
			}
			b = append(b, f)
			b = append(b, h.MAC[:]...)
			b = append(b, h.IP.AsSlice()...)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes b, replacing all of a. It enforces every rule of
// the layout and returns an error wrapping ErrVersion, ErrMalformed or
// ErrLimit otherwise; on error a is left zero. a keeps no reference to b.
func (a *Advert) UnmarshalBinary(b []byte) error {
	*a = Advert{}
	if err := a.decode(b); err != nil {
		*a = Advert{}
		return err
	}
	return nil
}

func (a *Advert) decode(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("%w: empty advert", ErrMalformed)
	case b[0] != advertVersion:
		return fmt.Errorf("%w: %d", ErrVersion, b[0])
	case len(b) < advertHeaderLen:
		return fmt.Errorf("%w: %d-byte advert", ErrMalformed, len(b))
	case b[1]&^advertFull != 0:
		return fmt.Errorf("%w: advert flags %#02x", ErrMalformed, b[1])
	}
	a.Full = b[1]&advertFull != 0
	nh, ng := int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
	if err := checkCounts(a.Full, nh, ng); err != nil {
		return err
	}
	r := b[advertHeaderLen:]
	if nh+ng > len(r)/minRecordLen {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrMalformed, nh+ng, len(r))
	}
	var err error
	if a.Hosts, r, err = decodeHosts(r, nh, "host", nil); err != nil {
		return err
	}
	if a.Gone, r, err = decodeHosts(r, ng, "gone", a.Hosts); err != nil {
		return err
	}
	if len(r) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r))
	}
	return nil
}

// decodeHosts reads n records of list from r and returns what follows them.
func decodeHosts(r []byte, n int, list string, hosts []Host) ([]Host, []byte, error) {
	if n == 0 {
		return nil, r, nil
	}
	out := make([]Host, n)
	for i := range out {
		if len(r) < minRecordLen {
			return nil, nil, fmt.Errorf("%w: %s %d truncated", ErrMalformed, list, i)
		}
		f, al := r[0], 4
		if f&recIPv6 != 0 {
			al = 16
		}
		if len(r) < 7+al {
			return nil, nil, fmt.Errorf("%w: %s %d truncated", ErrMalformed, list, i)
		}
		h := &out[i]
		h.MAC, h.Role = [6]byte(r[1:7]), Role(f&recRoleMask>>recRoleShift)
		h.IP, _ = netip.AddrFromSlice(r[7 : 7+al])
		if f&^(recIPv6|recRoleMask) != 0 {
			return nil, nil, fmt.Errorf("%w: %s %d: flags %#02x", ErrMalformed, list, i, f)
		}
		if err := checkHost(out[:i], h, list == "gone", hosts); err != nil {
			return nil, nil, fmt.Errorf("%s %d: %w", list, i, err)
		}
		r = r[7+al:]
	}
	return out, r, nil
}

// validate checks every rule of the layout on an Advert built in memory.
func (a *Advert) validate() error {
	if err := checkCounts(a.Full, len(a.Hosts), len(a.Gone)); err != nil {
		return err
	}
	for i := range a.Hosts {
		if err := checkHost(a.Hosts[:i], &a.Hosts[i], false, nil); err != nil {
			return fmt.Errorf("host %d: %w", i, err)
		}
	}
	for i := range a.Gone {
		if err := checkHost(a.Gone[:i], &a.Gone[i], true, a.Hosts); err != nil {
			return fmt.Errorf("gone %d: %w", i, err)
		}
	}
	return nil
}

func checkCounts(full bool, nh, ng int) error {
	switch {
	case nh > MaxHosts || ng > MaxHosts:
		return fmt.Errorf("%w: %d hosts, %d gone, at most %d each", ErrLimit, nh, ng, MaxHosts)
	case full && ng != 0:
		return fmt.Errorf("%w: full advert with %d gone", ErrMalformed, ng)
	case !full && nh+ng == 0:
		return fmt.Errorf("%w: empty delta", ErrMalformed)
	}
	return nil
}

// checkHost checks h given the records before it in its list; a gone
// record must also not be in hosts (sorted).
func checkHost(before []Host, h *Host, gone bool, hosts []Host) error {
	switch {
	case !hostAddr(h.IP):
		return fmt.Errorf("%w: %v is not a host address", ErrMalformed, h.IP)
	case !unicastMAC(h.MAC):
		return fmt.Errorf("%w: %v: MAC %x is not unicast", ErrMalformed, h.IP, h.MAC)
	case h.Role > RoleRouter || h.Role != RoleUnknown && (gone || h.IP.Is4()):
		return fmt.Errorf("%w: %v: role %v", ErrMalformed, h.IP, h.Role)
	case len(before) > 0 && before[len(before)-1].IP.Compare(h.IP) >= 0:
		return fmt.Errorf("%w: %v out of order", ErrMalformed, h.IP)
	}
	if gone {
		if _, found := slices.BinarySearchFunc(hosts, h.IP, hostCmp); found {
			return fmt.Errorf("%w: %v both bound and gone", ErrMalformed, h.IP)
		}
	}
	return nil
}

func hostCmp(h Host, ip netip.Addr) int { return h.IP.Compare(ip) }
