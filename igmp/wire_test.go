package igmp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// wireCases are messages of every type; each must survive Frame → parse.
var wireCases = []struct {
	name     string
	src, dst netip.Addr
	m        Message
}{
	{"igmpv1 query", routerIP, allSystems, Message{Type: TypeIGMPQuery, Version: 1, Group: netip.IPv4Unspecified()}},
	{"igmpv2 general query", routerIP, allSystems, Message{Type: TypeIGMPQuery, Version: 2, Group: netip.IPv4Unspecified(), MaxRespCode: 100}},
	{"igmpv2 group query", routerIP, grp, Message{Type: TypeIGMPQuery, Version: 2, Group: grp, MaxRespCode: 10}},
	{"igmpv3 general query", routerIP, allSystems, Message{Type: TypeIGMPQuery, Version: 3, Group: netip.IPv4Unspecified(), MaxRespCode: 0x9c, QRV: 2, QQIC: 0xa5}},
	{"igmpv3 source query", routerIP, grp, Message{Type: TypeIGMPQuery, Version: 3, Group: grp, MaxRespCode: 10, Suppress: true, QRV: 7, QQIC: 125, Sources: []netip.Addr{sa, sb}}},
	{"igmpv1 report", h1, grp, Message{Type: TypeIGMPv1Report, Version: 1, Group: grp}},
	{"igmpv2 report", h1, grp, Message{Type: TypeIGMPv2Report, Version: 2, Group: grp}},
	{"igmpv2 leave", h1, ip("224.0.0.2"), Message{Type: TypeIGMPLeave, Version: 2, Group: grp}},
	{"igmpv3 report", h1, igmpv3Dst, Message{Type: TypeIGMPv3Report, Version: 3, Records: []Record{
		rec(ModeIsExclude, grp), rec(AllowNewSources, ip("232.1.1.1"), sa, sb, sc), rec(9, ip("239.9.9.9"), sa)}}},
	{"mldv1 query", routerLL, allNodes, Message{Type: TypeMLDQuery, Version: 1, Group: netip.IPv6Unspecified(), MaxRespCode: 10000}},
	{"mldv2 general query", routerLL, allNodes, Message{Type: TypeMLDQuery, Version: 2, Group: netip.IPv6Unspecified(), MaxRespCode: 0x8d4c, QRV: 2, QQIC: 125}},
	{"mldv2 source query", routerLL, grp6, Message{Type: TypeMLDQuery, Version: 2, Group: grp6, MaxRespCode: 1000, Suppress: true, QRV: 2, QQIC: 125, Sources: []netip.Addr{ip("2001:db8::1"), ip("2001:db8::2")}}},
	{"mldv1 report", h1LL, grp6, Message{Type: TypeMLDv1Report, Version: 1, Group: grp6}},
	{"mldv1 done", h1LL, ip("ff02::2"), Message{Type: TypeMLDDone, Version: 1, Group: grp6}},
	{"mldv2 report", h1LL, mldv2Dst, Message{Type: TypeMLDv2Report, Version: 2, Records: []Record{
		rec(ChangeToIncludeMode, grp6, ip("2001:db8::1")), rec(ModeIsExclude, ip("ff02::1:ff00:1"))}}},
}

func TestWireRoundTrip(t *testing.T) {
	for _, c := range wireCases {
		f := frame(t, hostMAC, c.src, c.dst, &c.m)
		p, err := parseFrame(f)
		if err != nil {
			t.Fatalf("%s: parseFrame: %v", c.name, err)
		}
		var m *Message
		if c.m.Type.IsMLD() {
			m, err = ParseMLDPacket(p.src, p.dst, p.payload)
		} else {
			m, err = ParseIGMP(p.payload)
		}
		if err != nil {
			t.Fatalf("%s: parse: %v", c.name, err)
		}
		if !reflect.DeepEqual(*m, c.m) {
			t.Errorf("%s: got %+v\nwant %+v", c.name, *m, c.m)
		}
		if p.hops != 1 || !p.alert || p.src != c.src || p.dst != c.dst {
			t.Errorf("%s: hops %d alert %v %v→%v", c.name, p.hops, p.alert, p.src, p.dst)
		}
	}
}

// TestWireGopacket cross-checks our frames with gopacket's decoders, on the
// fields gopacket reads right: it swaps exponent and mantissa of IGMPv3
// codes and decodes IGMPv2's linear code as a float, so Max Resp Code and
// QQIC are compared raw, from the bytes, where at all.
func TestWireGopacket(t *testing.T) {
	for _, c := range wireCases {
		f := frame(t, hostMAC, c.src, c.dst, &c.m)
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("%s: gopacket: %v", c.name, el.Error())
		}
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if c.dst.Is4() {
			ip4 := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			d := c.dst.As4()
			if ip4.TTL != 1 || len(ip4.Options) != 1 || ip4.Options[0].OptionType != ipv4OptRouterAlert ||
				ip4.TOS != 0xc0 || ip4.Flags != layers.IPv4DontFragment ||
				eth.DstMAC.String() != (net.HardwareAddr{1, 0, 0x5e, d[1] & 0x7f, d[2], d[3]}).String() {
				t.Errorf("%s: IPv4 %+v eth %v", c.name, ip4, eth.DstMAC)
			}
			// gopacket does not verify checksums: recompute the header's.
			if fold(sum(0, ip4.Contents)) != 0 {
				t.Errorf("%s: IPv4 header checksum", c.name)
			}
		} else {
			ip6 := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			hbh, _ := pkt.Layer(layers.LayerTypeIPv6HopByHop).(*layers.IPv6HopByHop)
			d := c.dst.As16()
			if ip6.HopLimit != 1 || hbh == nil || hbh.Options[0].OptionType != ipv6OptRouterAlert ||
				eth.DstMAC.String() != (net.HardwareAddr{0x33, 0x33, d[12], d[13], d[14], d[15]}).String() {
				t.Errorf("%s: IPv6 %+v hbh %+v eth %v", c.name, ip6, hbh, eth.DstMAC)
			}
		}
		switch l := pkt.Layer(pkt.Layers()[len(pkt.Layers())-1].LayerType()).(type) {
		case *layers.IGMPv1or2:
			if uint8(l.Type) != uint8(c.m.Type) || l.Version != uint8(c.m.Version) || !ipEq(l.GroupAddress, c.m.Group) {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
		case *layers.IGMP:
			if uint8(l.Type) != uint8(c.m.Type) || l.Version != 3 {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
			if c.m.Type == TypeIGMPQuery && (!ipEq(l.GroupAddress, c.m.Group) || l.SupressRouterProcessing != c.m.Suppress ||
				l.RobustnessValue != c.m.QRV || !ipsEq(l.SourceAddresses, c.m.Sources)) {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
			for i, r := range l.GroupRecords {
				if uint8(r.Type) != uint8(c.m.Records[i].Type) || !ipEq(r.MulticastAddress, c.m.Records[i].Group) ||
					!ipsEq(r.SourceAddresses, c.m.Records[i].Sources) {
					t.Errorf("%s: record %d: gopacket %+v", c.name, i, r)
				}
			}
		case *layers.MLDv1MulticastListenerQueryMessage:
			if !ipEq(l.MulticastAddress, c.m.Group) || uint16(l.MaximumResponseDelay.Milliseconds()) != c.m.MaxRespCode {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
		case *layers.MLDv2MulticastListenerQueryMessage:
			if !ipEq(l.MulticastAddress, c.m.Group) || l.MaximumResponseCode != c.m.MaxRespCode || l.QueriersQueryIntervalCode != c.m.QQIC ||
				l.SuppressRoutersideProcessing != c.m.Suppress || l.QueriersRobustnessVariable != c.m.QRV || !ipsEq(l.SourceAddresses, c.m.Sources) {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
		case *layers.MLDv1MulticastListenerReportMessage:
			if !ipEq(l.MulticastAddress, c.m.Group) || c.m.Type != TypeMLDv1Report {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
		case *layers.MLDv1MulticastListenerDoneMessage:
			if !ipEq(l.MulticastAddress, c.m.Group) || c.m.Type != TypeMLDDone {
				t.Errorf("%s: gopacket %+v", c.name, l)
			}
		case *layers.MLDv2MulticastListenerReportMessage:
			for i, r := range l.MulticastAddressRecords {
				if uint8(r.RecordType) != uint8(c.m.Records[i].Type) || !ipEq(r.MulticastAddress, c.m.Records[i].Group) ||
					!ipsEq(r.SourceAddresses, c.m.Records[i].Sources) {
					t.Errorf("%s: record %d: gopacket %+v", c.name, i, r)
				}
			}
		default:
			t.Errorf("%s: gopacket decoded %T (%v)", c.name, l, pkt.Layers())
		}
		// ICMPv6 checksum: gopacket computes it on serialize; compare.
		if icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			ip6 := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			want := icmp.Checksum
			buf := gopacket.NewSerializeBuffer()
			if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
				t.Fatal(err)
			}
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, icmp, gopacket.Payload(icmp.Payload)); err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint16(buf.Bytes()[2:4]); got != want {
				t.Errorf("%s: ICMPv6 checksum %#x, gopacket computes %#x", c.name, want, got)
			}
		}
	}
}

// TestWireFromGopacket parses MLDv2 reports that gopacket serializes.
func TestWireFromGopacket(t *testing.T) {
	src, dst := net.ParseIP("fe80::1"), net.ParseIP("ff02::16")
	ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 1, SrcIP: src, DstIP: dst}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeMLDv2MulticastListenerReportMessageV2, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	rep := &layers.MLDv2MulticastListenerReportMessage{MulticastAddressRecords: []layers.MLDv2MulticastAddressRecord{
		{RecordType: layers.MLDv2MulticastAddressRecordTypeAllowNewSources, MulticastAddress: net.ParseIP("ff3e::1"),
			SourceAddresses: []net.IP{net.ParseIP("2001:db8::7")}, AuxiliaryData: []byte{1, 2, 3, 4}},
		{RecordType: layers.MLDv2MulticastAddressRecordTypeModeIsExcluded, MulticastAddress: net.ParseIP("ff15::9")},
	}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, icmp, rep); err != nil {
		t.Fatal(err)
	}
	m, err := ParseMLDPacket(ip("fe80::1"), ip("ff02::16"), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{rec(AllowNewSources, ip("ff3e::1"), ip("2001:db8::7")), rec(ModeIsExclude, ip("ff15::9"))}
	if !reflect.DeepEqual(m.Records, want) {
		t.Errorf("records %v, want %v", m.Records, want)
	}
}

func ipEq(a net.IP, b netip.Addr) bool {
	x, ok := netip.AddrFromSlice(a)
	return ok && x.Unmap() == b.Unmap()
}

func ipsEq(a []net.IP, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !ipEq(a[i], b[i]) {
			return false
		}
	}
	return true
}

// withSum writes a correct IGMP checksum into b.
func withSum(b []byte) []byte {
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], fold(sum(0, b)))
	return b
}

func TestParseIGMPErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", []byte{0x11, 0, 0}, ErrTruncated},
		{"checksum", []byte{0x16, 0, 0, 0, 239, 1, 1, 1}, ErrChecksum},
		{"unknown type", withSum([]byte{0x13, 0, 0, 0, 0, 0, 0, 0}), ErrUnknownType},
		{"report for unicast", withSum([]byte{0x16, 0, 0, 0, 10, 1, 1, 1}), ErrMalformed},
		{"query of 10 bytes", withSum([]byte{0x11, 10, 0, 0, 0, 0, 0, 0, 0, 0}), ErrMalformed},
		{"v3 query sources past end", withSum([]byte{0x11, 10, 0, 0, 239, 1, 1, 1, 2, 125, 0, 2, 10, 0, 0, 1}), ErrTruncated},
		{"general query with sources", withSum([]byte{0x11, 10, 0, 0, 0, 0, 0, 0, 2, 125, 0, 1, 10, 0, 0, 1}), ErrMalformed},
		{"query for unicast", withSum([]byte{0x11, 10, 0, 0, 10, 0, 0, 1}), ErrMalformed},
		{"v3 report records past end", withSum([]byte{0x22, 0, 0, 0, 0, 0, 0, 9, 2, 0, 0, 0, 239, 1, 1, 1}), ErrTruncated},
		{"v3 record sources past end", withSum([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 5, 239, 1, 1, 1}), ErrTruncated},
		{"v3 record aux past end", withSum([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 239, 1, 1, 1}), ErrTruncated},
		{"v3 record for unicast", withSum([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 10, 1, 1, 1}), ErrMalformed},
	} {
		if _, err := ParseIGMP(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Aux data and trailing bytes are skipped; an odd length still checks.
	m, err := ParseIGMP(withSum([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 239, 1, 1, 1, 0xde, 0xad, 0xbe, 0xef, 7}))
	if err != nil || len(m.Records) != 1 || m.Records[0].Type.Known() {
		t.Errorf("record with aux data: %v %v", m, err)
	}
}

func TestParseMLDErrors(t *testing.T) {
	q := func(n int, extra ...byte) []byte {
		b := make([]byte, n)
		b[0] = byte(TypeMLDQuery)
		return append(b, extra...)
	}
	grpQuery := q(28)
	copy(grpQuery[8:], grp6.AsSlice())
	grpQuery[27] = 1 // one source, none present
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", []byte{130, 0, 0}, ErrTruncated},
		{"not MLD", []byte{135, 0, 0, 0, 0, 0, 0, 0}, ErrUnknownType},
		{"query of 20 bytes", q(20), ErrTruncated},
		{"query of 26 bytes", q(26), ErrMalformed},
		{"query sources past end", grpQuery, ErrTruncated},
		{"report for unicast", append([]byte{131, 0, 0, 0, 0, 0, 0, 0}, ip("2001:db8::1").AsSlice()...), ErrMalformed},
		{"v2 report records past end", []byte{143, 0, 0, 0, 0, 0, 0, 1}, ErrTruncated},
	} {
		if _, err := ParseMLD(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	good, _ := (&Message{Type: TypeMLDv1Report, Version: 1, Group: grp6}).AppendMLD(nil, h1LL, grp6)
	if _, err := ParseMLDPacket(ip("fe80::2"), grp6, good); !errors.Is(err, ErrChecksum) {
		t.Errorf("checksum with the wrong source: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, m := range []Message{
		{Type: TypeMLDQuery, Version: 2},                                           // MLD through AppendIGMP
		{Type: TypeIGMPQuery, Version: 4, Group: grp},                              // no such version
		{Type: TypeIGMPQuery, Version: 2, Group: grp, Sources: []netip.Addr{sa}},   // v2 has no sources
		{Type: TypeIGMPQuery, Version: 3, Group: grp, Sources: []netip.Addr{h1LL}}, // wrong family
		{Type: TypeIGMPv2Report, Version: 2, Group: h1},                            // unicast group
		{Type: TypeIGMPQuery, Version: 3, Group: grp, MaxRespCode: 256},
		{Type: 0x13},
	} {
		if _, err := m.AppendIGMP(nil); err == nil {
			t.Errorf("AppendIGMP(%+v) succeeded", m)
		}
	}
	if _, err := (&Message{Type: TypeMLDv1Report, Version: 1, Group: grp6}).AppendMLD(nil, h1, grp6); err == nil {
		t.Error("AppendMLD from an IPv4 source succeeded")
	}
	if _, err := (&Message{Type: TypeIGMPv2Report, Version: 2, Group: grp}).Frame(hostMAC, h1, h2); err == nil {
		t.Error("Frame to a unicast destination succeeded")
	}
}
