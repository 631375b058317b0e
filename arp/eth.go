package arp

// The link layer shared by ARP and ND frames: Ethernet II with at most one
// 802.1Q tag, as tap.Classify accepts; frames carry no FCS and may carry
// padding after the packet (minimum Ethernet frame size), which parsers
// ignore.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const (
	ethHeaderLen  = 14
	vlanTagLen    = 4
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Eth is the Ethernet header of a frame. A reply keeps the request's tag,
// so that in switch mode it goes back into the VLAN the request came from.
type Eth struct {
	Dst, Src [6]byte
	Tagged   bool   // an 802.1Q tag follows the addresses
	TCI      uint16 // the tag's priority, DEI and VLAN ID when Tagged
}

// parseEth returns frame's header, its (inner) ethertype and the payload,
// which is borrowed from frame.
func parseEth(frame []byte) (Eth, uint16, []byte, error) {
	var e Eth
	if len(frame) < ethHeaderLen {
		return e, 0, nil, fmt.Errorf("%w: %d-byte frame", ErrTruncated, len(frame))
	}
	e.Dst, e.Src = [6]byte(frame[0:6]), [6]byte(frame[6:12])
	etype, p := binary.BigEndian.Uint16(frame[12:14]), frame[ethHeaderLen:]
	if etype == etherTypeVLAN {
		if len(p) < vlanTagLen {
			return e, 0, nil, fmt.Errorf("%w: 802.1Q tag", ErrTruncated)
		}
		e.Tagged, e.TCI = true, binary.BigEndian.Uint16(p[0:2])
		etype, p = binary.BigEndian.Uint16(p[2:4]), p[vlanTagLen:]
	}
	return e, etype, p, nil
}

// append appends the header with the given (inner) ethertype.
func (e *Eth) append(b []byte, etype uint16) []byte {
	b = append(b, e.Dst[:]...)
	b = append(b, e.Src[:]...)
	if e.Tagged {
		b = binary.BigEndian.AppendUint16(b, etherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, e.TCI)
	}
	return binary.BigEndian.AppendUint16(b, etype)
}

func (e *Eth) len() int {
	if e.Tagged {
		return ethHeaderLen + vlanTagLen
	}
	return ethHeaderLen
}

// unicastMAC reports whether a host can own m: the I/G bit is clear and it
// is not all zero (what ARP requests carry as the unknown target).
func unicastMAC(m [6]byte) bool { return m[0]&1 == 0 && m != [6]byte{} }

// hostAddr reports whether a host can own a, so whether it may be learned
// or advertised: not unspecified, "this network" (0/8, RFC 1122
// §3.2.1.3), loopback, multicast or limited broadcast; IPv6 never 4-in-6
// (IPv4 hosts are always kept as 4-byte addresses) and without a zone.
func hostAddr(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.Is4In6() {
		return false
	}
	if a.Is4() {
		a4 := a.As4()
		return a4[0] != 0 && a4 != [4]byte{255, 255, 255, 255}
	}
	return true
}

// checksum is the Internet checksum (RFC 1071) of an ICMPv6 message msg
// with the IPv6 pseudo-header (RFC 8200 §8.1): over a message whose
// checksum field is right, it is 0.
func checksum(src, dst netip.Addr, msg []byte) uint16 {
	s16, d16 := src.As16(), dst.As16()
	s := sum(0, s16[:])
	s = sum(s, d16[:])
	s += uint32(len(msg)>>16) + uint32(len(msg)&0xffff) + protoICMPv6
	s = sum(s, msg)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff { // fold as we go: no overflow however long b is
		s = s>>16 + s&0xffff
	}
	return s
}
