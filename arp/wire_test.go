package arp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/ipopd/ipopd/arp"
)

// TestParseSameAsGopacket: frames gopacket built parse into the fields it
// was given, and our encoders give back the very same bytes.
func TestParseSameAsGopacket(t *testing.T) {
	for _, vlan := range []uint16{0, 42} {
		f := arpFrame(t, vlan, arp.OpReply, hw(9), hw(1), "10.0.0.1", hw(9), "10.0.0.9")
		a, err := arp.ParseARP(f)
		if err != nil {
			t.Fatal(err)
		}
		want := &arp.ARP{Eth: arp.Eth{Dst: hw(9), Src: hw(1), Tagged: vlan != 0, TCI: tci(vlan)}, Op: arp.OpReply,
			SenderMAC: hw(1), SenderIP: ip("10.0.0.1"), TargetMAC: hw(9), TargetIP: ip("10.0.0.9")}
		if !reflect.DeepEqual(a, want) {
			t.Errorf("ParseARP\n%+v\nwant\n%+v", a, want)
		}
		// gopacket pads to the Ethernet minimum; we leave that to the NIC.
		if b := a.AppendFrame(nil); !bytes.HasPrefix(f, b) || len(f) != 60 || bytes.Count(f[len(b):], []byte{0}) != 60-len(b) {
			t.Errorf("AppendFrame\n% x\nwant\n% x", b, f)
		}
		// Ethernet padding is not part of the packet.
		if p, err := arp.ParseARP(append(bytes.Clone(f), make([]byte, 18)...)); err != nil || !reflect.DeepEqual(p, want) {
			t.Errorf("padded: %+v, %v", p, err)
		}

		f = nsVLAN(t, vlan, hw(1), "fe80::1", "fe80::2")
		n, err := arp.ParseND(f)
		if err != nil {
			t.Fatal(err)
		}
		wantN := &arp.ND{Eth: arp.Eth{Dst: multicastMAC(solicited(ip("fe80::2"))), Src: hw(1), Tagged: vlan != 0, TCI: tci(vlan)},
			Src: ip("fe80::1"), Dst: solicited(ip("fe80::2")), Type: arp.TypeNS, Target: ip("fe80::2"),
			LinkAddr: hw(1), HasLinkAddr: true}
		if !reflect.DeepEqual(n, wantN) {
			t.Errorf("ParseND\n%+v\nwant\n%+v", n, wantN)
		}
		if b := n.AppendFrame(nil); !bytes.Equal(b, f) {
			t.Errorf("AppendFrame\n% x\nwant\n% x", b, f)
		}
	}
	f := na(t, hw(2), "fd00::2", "fd00::1", fR|fS)
	n, err := arp.ParseND(f)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Router || !n.Solicited || n.Override || n.Type != arp.TypeNA || n.LinkAddr != hw(2) || n.Src != ip("fd00::2") {
		t.Errorf("NA %+v", n)
	}
	if b := n.AppendFrame(nil); !bytes.Equal(b, f) {
		t.Errorf("AppendFrame\n% x\nwant\n% x", b, f)
	}
}

func tci(vlan uint16) uint16 {
	if vlan == 0 {
		return 0
	}
	return 5<<13 | vlan // the test frames' priority 5
}

// TestParseNDExtras: what RFC 4861 lets a valid message carry.
func TestParseNDExtras(t *testing.T) {
	m1, m9 := hw(1), hw(9)
	base := ns(t, hw(1), "fd00::1", "fd00::2")
	want, _ := arp.ParseND(base)
	for name, f := range map[string][]byte{
		"padding":    append(bytes.Clone(base), make([]byte, 30)...),
		"hop-by-hop": hopByHop(base),
		"unknown option": withSum(icmp6(t, multicastMAC(want.Dst), hw(1), 0, 255, want.Src, want.Dst, arp.TypeNS,
			&layers.ICMPv6NeighborSolicitation{TargetAddress: want.Target.AsSlice(), Options: layers.ICMPv6Options{
				// gopacket writes options in reverse order: on the
				// wire, a nonce (RFC 7527), our address, then a second
				// address option, which is ignored.
				{Type: layers.ICMPv6OptSourceAddress, Data: m9[:]},
				{Type: layers.ICMPv6OptSourceAddress, Data: m1[:]},
				{Type: 14, Data: []byte{1, 2, 3, 4, 5, 6}},
			}})),
	} {
		if n, err := arp.ParseND(f); err != nil || !reflect.DeepEqual(n, want) {
			t.Errorf("%s: %+v, %v", name, n, err)
		}
	}
	d, err := arp.ParseND(dad(t, hw(1), "fd00::1"))
	if err != nil || !d.DAD() || d.HasLinkAddr {
		t.Errorf("DAD: %+v, %v", d, err)
	}
}

// hopByHop inserts an empty Hop-by-Hop header (PadN) before the ICMPv6
// message of an untagged frame; the checksum does not change.
func hopByHop(f []byte) []byte {
	out := append(bytes.Clone(f[:54]), 58, 0, 1, 4, 0, 0, 0, 0)
	out = append(out, f[54:]...)
	out[14+6] = 0
	binary.BigEndian.PutUint16(out[14+4:], binary.BigEndian.Uint16(out[14+4:])+8)
	return out
}

// TestParseErrors: each RFC 4861 §7.1 validity check and each malformation
// is refused with its sentinel; Local forwards such frames and counts them,
// except messages it merely does not handle.
func TestParseErrors(t *testing.T) {
	good := ns(t, hw(1), "fd00::1", "fd00::2")
	g := solicited(ip("fd00::2"))
	cases := map[string]struct {
		f    []byte
		want error
	}{
		"empty":            {nil, arp.ErrTruncated},
		"vlan cut":         {good[:16], arp.ErrTruncated},
		"ipv4":             {append(bytes.Clone(good[:12]), 0x08, 0x00), arp.ErrNotNeighbor},
		"ipv6 cut":         {good[:40], arp.ErrTruncated},
		"payload cut":      {good[:len(good)-1], arp.ErrTruncated},
		"hop limit":        {icmp6(t, multicastMAC(g), hw(1), 0, 254, ip("fd00::1"), g, arp.TypeNS, nsLayer("fd00::2", hw(1))), arp.ErrNotLocal},
		"checksum":         {patch(good, len(good)-1, 0x55), arp.ErrChecksum},
		"code":             {withSum(patch(good, 55, 1)), arp.ErrMalformed},
		"short message":    {withSum(setPayloadLen(good, 20)), arp.ErrMalformed},
		"multicast target": {ns(t, hw(1), "fd00::1", "ff02::1"), arp.ErrMalformed},
		"multicast source": {icmp6(t, multicastMAC(g), hw(1), 0, 255, ip("ff02::9"), g, arp.TypeNS, nsLayer("fd00::2", hw(1))), arp.ErrMalformed},
		"option length 0":  {withSum(patch(good, len(good)-7, 0)), arp.ErrMalformed},
		"option overrun":   {withSum(patch(good, len(good)-7, 2)), arp.ErrMalformed},
		"long lladdr": {icmp6(t, multicastMAC(g), hw(1), 0, 255, ip("fd00::1"), g, arp.TypeNS, &layers.ICMPv6NeighborSolicitation{
			TargetAddress: ip("fd00::2").AsSlice(), Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: make([]byte, 14)}}}), arp.ErrMalformed},
		"dad with lladdr": {icmp6(t, multicastMAC(g), hw(1), 0, 255, ip("::"), g, arp.TypeNS, nsLayer("fd00::2", hw(1))), arp.ErrMalformed},
		"dad to all nodes": {icmp6(t, bcast, hw(1), 0, 255, ip("::"), ip("ff02::1"), arp.TypeNS,
			&layers.ICMPv6NeighborSolicitation{TargetAddress: ip("fd00::2").AsSlice()}), arp.ErrMalformed},
		"solicited multicast na": {na(t, hw(2), "fd00::2", "ff02::1", fS), arp.ErrMalformed},
		"na from unspecified": {icmp6(t, bcast, hw(2), 0, 255, ip("::"), ip("ff02::1"), arp.TypeNA,
			&layers.ICMPv6NeighborAdvertisement{TargetAddress: ip("fd00::2").AsSlice()}), arp.ErrMalformed},
		"fragment":       {fragment(good), arp.ErrMalformed},
		"router advert":  {withSum(patch(good, 54, 134)), arp.ErrUnsupported},
		"echo":           {withSum(patch(good, 54, 128)), arp.ErrNotNeighbor},
		"udp":            {patch(good, 20, 17), arp.ErrNotNeighbor},
		"rarp":           {patch(garp(t, hw(1), "10.0.0.1"), 21, 3), arp.ErrUnsupported},
		"token ring":     {patch(garp(t, hw(1), "10.0.0.1"), 15, 6), arp.ErrUnsupported},
		"arp lengths":    {patch(garp(t, hw(1), "10.0.0.1"), 18, 8), arp.ErrMalformed},
		"arp cut":        {garp(t, hw(1), "10.0.0.1")[:41], arp.ErrTruncated},
		"arp header cut": {garp(t, hw(1), "10.0.0.1")[:20], arp.ErrTruncated},
	}
	for name, c := range cases {
		var err error
		if len(c.f) >= 14 && binary.BigEndian.Uint16(c.f[12:]) == 0x0806 {
			_, err = arp.ParseARP(c.f)
		} else {
			_, err = arp.ParseND(c.f)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		tb := arp.NewTable(arp.Config{})
		d, lerr := tb.Local(t0, c.f)
		if !d.Forward || d.Reply != nil {
			t.Errorf("%s: Local %+v, want forward", name, d)
		}
		unsupported := c.want == arp.ErrUnsupported
		if unsupported != (lerr == nil) || unsupported != (tb.Stats().Errors == 0) {
			t.Errorf("%s: Local error %v, stats %+v", name, lerr, tb.Stats())
		}
		if rerr := tb.Remote(t0, nodeB, c.f); unsupported != (rerr == nil) {
			t.Errorf("%s: Remote error %v", name, rerr)
		}
		if len(tb.Entries(t0)) != 0 {
			t.Errorf("%s: learned %+v", name, tb.Entries(t0))
		}
	}
}

// setPayloadLen sets the IPv6 payload length of an untagged frame.
func setPayloadLen(f []byte, n uint16) []byte {
	f = bytes.Clone(f)
	binary.BigEndian.PutUint16(f[18:], n)
	return f
}

// fragment puts a first-fragment header before the ICMPv6 message.
func fragment(f []byte) []byte {
	out := append(bytes.Clone(f[:54]), 58, 0, 0, 1, 0, 0, 0, 1) // offset 0, more fragments
	out = append(out, f[54:]...)
	out[20] = 44
	binary.BigEndian.PutUint16(out[18:], binary.BigEndian.Uint16(out[18:])+8)
	return out
}
