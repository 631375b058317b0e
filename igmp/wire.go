package igmp

import (
	"encoding/binary"
	"net/netip"
)

// Helpers shared by the IGMP and MLD codecs.

// sum adds b to an Internet checksum accumulator (RFC 1071) as a run of
// big-endian 16-bit words, an odd last byte padded with zero.
func sum(acc uint64, b []byte) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold finishes a checksum: the one's complement of the folded sum. Over
// data that includes a correct checksum field it yields 0.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// pseudo6 is the sum of the IPv6 pseudo-header for an ICMPv6 message of n
// bytes (RFC 8200 §8.1): source, destination, length and next header 58.
func pseudo6(src, dst netip.Addr, n int) uint64 {
	s, d := src.As16(), dst.As16()
	acc := sum(sum(0, s[:]), d[:])
	return acc + uint64(n>>16) + uint64(n&0xffff) + protoICMPv6
}

func addr4(b []byte) netip.Addr  { return netip.AddrFrom4([4]byte(b[:4])) }
func addr16(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b[:16])) }

// addrs reads n addresses of size bytes each.
func addrs(b []byte, n, size int) []netip.Addr {
	if n == 0 {
		return nil
	}
	out := make([]netip.Addr, n)
	for i := range out {
		if size == 4 {
			out[i] = addr4(b[i*4:])
		} else {
			out[i] = addr16(b[i*16:])
		}
	}
	return out
}

func appendAddr(b []byte, a netip.Addr) []byte { return append(b, a.AsSlice()...) }

// isGroup4 and isGroup6 say whether a is a multicast address of the family.
func isGroup4(a netip.Addr) bool { return a.Is4() && a.IsMulticast() }
func isGroup6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() && a.IsMulticast() }

// Protocol numbers and the Router Alert options.
const (
	protoHopByHop = 0
	protoIGMP     = 2
	protoRouting  = 43
	protoFragment = 44
	protoICMPv6   = 58
	protoDestOpts = 60

	ipv4OptRouterAlert = 148 // RFC 2113: type 0x94, length 4, value 0
	ipv6OptRouterAlert = 5   // RFC 2711: type 5, length 2, value 0 = MLD
)
