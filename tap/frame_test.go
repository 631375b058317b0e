package tap

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	hostMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	v4Mcast = net.HardwareAddr{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
	v6Mcast = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 0x16}
	bcast   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// build serialises layers with gopacket, an encoder independent of Classify.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func eth(dst net.HardwareAddr, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: hostMAC, DstMAC: dst, EthernetType: et}
}

func ip4(proto layers.IPProtocol, dst string) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: proto, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.ParseIP(dst).To4()}
}

func ip6(next layers.IPProtocol, dst string) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: next, SrcIP: net.ParseIP("fe80::1"), DstIP: net.ParseIP(dst)}
}

// hopByHopRA is an IPv6 hop-by-hop header with Router Alert (MLD), followed by ICMPv6.
func hopByHopRA(next layers.IPProtocol) gopacket.Payload {
	return gopacket.Payload{byte(next), 0, 5, 2, 0, 0, 1, 0}
}

func TestClassify(t *testing.T) {
	igmpV3Report := gopacket.Payload{0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 1, 239, 1, 2, 3, 0, 0, 0, 0}
	cases := []struct {
		name  string
		frame []byte
		want  Class
	}{
		{"runt", []byte{1, 2, 3}, ClassInvalid},
		{"igmp report", build(t, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolIGMP, "224.0.0.22"), igmpV3Report), ClassIGMP},
		{"igmp truncated ip", append(build(t, eth(v4Mcast, layers.EthernetTypeIPv4))[:14], 0x45, 0), ClassMulticast},
		{"udp multicast", build(t, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "239.1.2.3"), gopacket.Payload{1, 2, 3, 4, 5, 6, 7, 8}), ClassMulticast},
		{"arp", build(t, eth(bcast, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: hostMAC, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}}), ClassARP},
		{"mldv2 report", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop, "ff02::16"), hopByHopRA(layers.IPProtocolICMPv6), gopacket.Payload{143, 0, 0, 0, 0, 0, 0, 0}), ClassMLD},
		{"mldv1 done", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop, "ff02::2"), hopByHopRA(layers.IPProtocolICMPv6), gopacket.Payload{132, 0, 0, 0}), ClassMLD},
		{"neighbour solicitation", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6, "ff02::1:ff00:2"), gopacket.Payload{135, 0, 0, 0}), ClassNDP},
		{"echo request v6 multicast", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6, "ff02::1"), gopacket.Payload{128, 0, 0, 0}), ClassMulticast},
		{"broadcast ipv4", build(t, eth(bcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "10.0.0.255"), gopacket.Payload{0, 0, 0, 0, 0, 0, 0, 0}), ClassBroadcast},
		{"unicast", build(t, eth(net.HardwareAddr{2, 0, 0, 0, 0, 2}, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "10.0.0.2"), gopacket.Payload{0, 0, 0, 0, 0, 0, 0, 0}), ClassUnicast},
		{"vlan tagged igmp", build(t, eth(v4Mcast, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolIGMP, "224.0.0.22"), igmpV3Report), ClassIGMP},
		{"vlan truncated", append(build(t, eth(v4Mcast, layers.EthernetTypeDot1Q))[:14], 0, 7), ClassInvalid},
		{"hop-by-hop cut short", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop, "ff02::16"), gopacket.Payload{58, 9, 0}), ClassMulticast},
	}
	for _, c := range cases {
		if got := Classify(c.frame); got != c.want {
			t.Errorf("%s: Classify = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseAddresses(t *testing.T) {
	udp := gopacket.Payload{1, 2, 3, 4, 5, 6, 7, 8}
	cases := []struct {
		name     string
		frame    []byte
		group    string // "" when Group must say no
		src, dst string // "" when not IP
		vlan     bool
	}{
		{"v4 group", build(t, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "239.1.2.3"), udp), "239.1.2.3", "10.0.0.1", "239.1.2.3", false},
		{"v4 group tagged", build(t, eth(v4Mcast, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP, "239.1.2.3"), udp), "239.1.2.3", "10.0.0.1", "239.1.2.3", true},
		{"v6 group", build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP, "ff15::1:1"), udp), "ff15::1:1", "fe80::1", "ff15::1:1", false},
		{"multicast MAC, unicast IP", build(t, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "10.0.0.9"), udp), "", "10.0.0.1", "10.0.0.9", false},
		{"IGMP is no data group", build(t, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolIGMP, "224.0.0.22"), udp), "", "10.0.0.1", "224.0.0.22", false},
		{"unicast", build(t, eth(net.HardwareAddr{2, 0, 0, 0, 0, 2}, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "10.0.0.2"), udp), "", "10.0.0.1", "10.0.0.2", false},
		{"not IP", build(t, eth(bcast, layers.EthernetTypeLLC), udp), "", "", "", false},
		{"arp: sender and target", build(t, eth(bcast, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: hostMAC, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}}), "", "10.0.0.1", "10.0.0.2", false},
	}
	for _, c := range cases {
		p := Parse(c.frame)
		g, src, ok := p.Group()
		if c.group == "" && ok || c.group != "" && (!ok || g.String() != c.group || src != p.Src) {
			t.Errorf("%s: Group = %v, %v, %v", c.name, g, src, ok)
		}
		str := func(a netip.Addr) string {
			if !a.IsValid() {
				return ""
			}
			return a.String()
		}
		if str(p.Src) != c.src || str(p.Dst) != c.dst || p.VLAN != c.vlan {
			t.Errorf("%s: parsed %+v", c.name, p)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{})
	f.Add(build(f, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop, "ff02::16"), hopByHopRA(layers.IPProtocolICMPv6), gopacket.Payload{143, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p := Parse(frame)
		c := p.Class
		if c >= NumClasses {
			t.Fatalf("class %d out of range", c)
		}
		if len(frame) < EthHeaderLen && c != ClassInvalid {
			t.Fatalf("runt classified as %v", c)
		}
		// Addresses come only from IP and ARP headers, both or neither, of
		// the family the ethertype says.
		if p.Src.IsValid() != p.Dst.IsValid() ||
			(p.Src.IsValid() && !((p.EtherType == EtherTypeIPv4 || p.EtherType == EtherTypeARP) && p.Src.Is4() || p.EtherType == EtherTypeIPv6 && p.Src.Is6())) {
			t.Fatalf("addresses %v -> %v with ethertype %#x", p.Src, p.Dst, p.EtherType)
		}
		if p.Target.IsValid() && (p.Class != ClassNDP || !p.Target.Is6()) {
			t.Fatalf("target %v in a %v frame", p.Target, p.Class)
		}
		if g, src, ok := p.Group(); ok && (c != ClassMulticast || !g.IsMulticast() || src != p.Src) {
			t.Fatalf("group %v from %v of a %v frame", g, src, c)
		}
	})
}

func TestParseNDTarget(t *testing.T) {
	na := append([]byte{136, 0, 0, 0, 0x60, 0, 0, 0}, net.ParseIP("fd54::7")...)
	p := Parse(build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6, "ff02::1"), gopacket.Payload(na)))
	if p.Class != ClassNDP || p.ICMPv6 != 136 || p.Target != netip.MustParseAddr("fd54::7") {
		t.Errorf("NA parsed as %+v", p)
	}
	ra := Parse(build(t, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6, "ff02::1"), gopacket.Payload{134, 0, 0, 0, 64, 0, 0, 0}))
	if ra.Class != ClassNDP || ra.ICMPv6 != 134 || ra.Target.IsValid() {
		t.Errorf("RA parsed as %+v", ra)
	}
}

func BenchmarkParse(b *testing.B) {
	frame := build(b, eth(v4Mcast, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, "239.1.2.3"), gopacket.Payload(make([]byte, 100)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(frame)
	}
}

func BenchmarkClassify(b *testing.B) {
	frame := build(b, eth(v6Mcast, layers.EthernetTypeIPv6), ip6(layers.IPProtocolIPv6HopByHop, "ff02::16"), hopByHopRA(layers.IPProtocolICMPv6), gopacket.Payload{143, 0, 0, 0})
	b.ReportAllocs()
	for b.Loop() {
		Classify(frame)
	}
}
