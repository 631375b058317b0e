package arp_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Test frames are built with gopacket, independently of the package's own
// encoders, so that each side checks the other.

var (
	t0    = time.Unix(1_700_000_000, 0)
	nodeB = node(2)
	nodeC = node(3)
	bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func node(n byte) nodeid.ID  { return nodeid.ID{0: n, 31: ^n} }
func hw(n byte) [6]byte      { return [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, n} }
func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// eth serializes layers behind an Ethernet header, with an 802.1Q tag of
// VLAN vlan when vlan > 0.
func eth(t testing.TB, dst, src [6]byte, vlan uint16, etype layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	e := &layers.Ethernet{DstMAC: dst[:], SrcMAC: src[:], EthernetType: etype}
	all := []gopacket.SerializableLayer{e}
	if vlan > 0 {
		e.EthernetType = layers.EthernetTypeDot1Q
		all = append(all, &layers.Dot1Q{Priority: 5, VLANIdentifier: vlan, Type: etype})
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, append(all, ls...)...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// arpFrame is an ARP packet from sha/spa about tpa, to dst.
func arpFrame(t testing.TB, vlan uint16, op uint16, dst, sha [6]byte, spa string, tha [6]byte, tpa string) []byte {
	t.Helper()
	return eth(t, dst, sha, vlan, layers.EthernetTypeARP, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: sha[:], SourceProtAddress: ip(spa).AsSlice(),
		DstHwAddress: tha[:], DstProtAddress: ip(tpa).AsSlice(),
	})
}

// request is a broadcast ARP request, as a host resolving tpa sends it.
func request(t testing.TB, sha [6]byte, spa, tpa string) []byte {
	return arpFrame(t, 0, arp.OpRequest, bcast, sha, spa, [6]byte{}, tpa)
}

// garp is a gratuitous ARP request: an announcement (RFC 5227 §2.3).
func garp(t testing.TB, sha [6]byte, spa string) []byte {
	return arpFrame(t, 0, arp.OpRequest, bcast, sha, spa, [6]byte{}, spa)
}

func reply(t testing.TB, sha [6]byte, spa string, tha [6]byte, tpa string) []byte {
	return arpFrame(t, 0, arp.OpReply, tha, sha, spa, tha, tpa)
}

// icmp6 serializes an ND message in IPv6 with the given hop limit.
func icmp6(t testing.TB, dst, src [6]byte, vlan uint16, hops uint8, sip, dip netip.Addr, typ uint8, msg gopacket.SerializableLayer) []byte {
	t.Helper()
	ip6 := &layers.IPv6{Version: 6, HopLimit: hops, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: sip.AsSlice(), DstIP: dip.AsSlice()}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	if err := ic.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	return eth(t, dst, src, vlan, layers.EthernetTypeIPv6, ip6, ic, msg)
}

// ns is a multicast NS for target from src at sha, with the Source
// Link-Layer Address option, as a host resolving target sends it.
func ns(t testing.TB, sha [6]byte, src, target string) []byte {
	return nsVLAN(t, 0, sha, src, target)
}

func nsVLAN(t testing.TB, vlan uint16, sha [6]byte, src, target string) []byte {
	g := solicited(ip(target))
	return icmp6(t, multicastMAC(g), sha, vlan, 255, ip(src), g, arp.TypeNS, nsLayer(target, sha))
}

// nsLayer is an NS for target with the Source Link-Layer Address sha.
func nsLayer(target string, sha [6]byte) *layers.ICMPv6NeighborSolicitation {
	return &layers.ICMPv6NeighborSolicitation{
		TargetAddress: ip(target).AsSlice(),
		Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: sha[:]}},
	}
}

// dad is a duplicate address detection probe for target (RFC 4862 §5.4.2).
func dad(t testing.TB, sha [6]byte, target string) []byte {
	g := solicited(ip(target))
	return icmp6(t, multicastMAC(g), sha, 0, 255, netip.IPv6Unspecified(), g, arp.TypeNS,
		&layers.ICMPv6NeighborSolicitation{TargetAddress: ip(target).AsSlice()})
}

// NA flags.
const (
	fR = 0x80
	fS = 0x40
	fO = 0x20
)

// na is an NA for target at tha from that address, to dst (unicast, or
// ff02::1 for an unsolicited one).
func na(t testing.TB, tha [6]byte, target, dst string, flags uint8) []byte {
	d := ip(dst)
	dmac := multicastMAC(d)
	if !d.IsMulticast() {
		dmac = hw(0xee)
	}
	return icmp6(t, dmac, tha, 0, 255, ip(target), d, arp.TypeNA, &layers.ICMPv6NeighborAdvertisement{
		Flags: flags, TargetAddress: ip(target).AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: tha[:]}},
	})
}

func solicited(a netip.Addr) netip.Addr {
	a16 := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: a16[13], 14: a16[14], 15: a16[15]})
}

// multicastMAC maps an IPv6 group to its MAC, 33:33 and the low 32 bits
// (RFC 2464 §7).
func multicastMAC(g netip.Addr) [6]byte {
	a := g.As16()
	return [6]byte{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// withSum fixes the ICMPv6 checksum of an untagged or tagged ND frame with
// no extension headers, so that fuzzing gets past the checksum check.
func withSum(b []byte) []byte {
	off := 14
	if len(b) >= 18 && binary.BigEndian.Uint16(b[12:]) == 0x8100 {
		off = 18
	}
	if len(b) < off+44 || binary.BigEndian.Uint16(b[off-2:]) != 0x86dd || b[off+6] != 58 {
		return b
	}
	ip6 := b[off:]
	end := min(40+int(binary.BigEndian.Uint16(ip6[4:])), len(ip6))
	if end < 44 {
		return b
	}
	msg := ip6[40:end]
	msg[2], msg[3] = 0, 0
	s := uint32(58) + uint32(len(msg))
	for _, p := range [][]byte{ip6[8:40], msg} {
		for i := 0; i+1 < len(p); i += 2 {
			s += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			s += uint32(p[len(p)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	binary.BigEndian.PutUint16(msg[2:], ^uint16(s))
	return b
}

// decode parses a frame with gopacket, failing on any decoding error.
func decode(t testing.TB, f []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	return p
}

func hwAddr(m [6]byte) net.HardwareAddr { return m[:] }
