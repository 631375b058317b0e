package arp_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Hosts of the answering tests: a local requester and a remote target.
var (
	macLocal  = hw(1)
	macRemote = hw(2)
)

// TestAnswerARP: once a remote host is known, by a frame from its node or
// by an advert, a broadcast request for it is answered on the spot, with
// every field as the host itself would fill it, and does not cross the
// overlay.
func TestAnswerARP(t *testing.T) {
	for _, c := range []struct {
		name  string
		teach func(tb *arp.Table)
		vlan  uint16
	}{
		{"remote garp", func(tb *arp.Table) { mustRemote(t, tb, nodeB, garp(t, macRemote, "10.0.0.2")) }, 0},
		{"remote request", func(tb *arp.Table) { mustRemote(t, tb, nodeB, request(t, macRemote, "10.0.0.2", "10.0.0.9")) }, 0},
		{"advert", func(tb *arp.Table) {
			tb.Apply(t0, nodeB, &arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.2"), MAC: macRemote}}})
		}, 0},
		{"vlan", func(tb *arp.Table) { mustRemote(t, tb, nodeB, garp(t, macRemote, "10.0.0.2")) }, 42},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := arp.NewTable(arp.Config{})
			c.teach(tb)
			req := arpFrame(t, c.vlan, arp.OpRequest, bcast, macLocal, "10.0.0.1", [6]byte{}, "10.0.0.2")
			d, err := tb.Local(t0, req)
			if err != nil || d.Forward || d.Reply == nil {
				t.Fatalf("Local: %+v, %v; want a reply and no forward", d, err)
			}
			p := decode(t, d.Reply)
			e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(e.DstMAC, macLocal[:]) || !bytes.Equal(e.SrcMAC, macRemote[:]) {
				t.Errorf("Ethernet %v → %v, want %v → %v", e.SrcMAC, e.DstMAC, hwAddr(macRemote), hwAddr(macLocal))
			}
			checkVLAN(t, p, c.vlan, layers.EthernetTypeARP)
			a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			if a == nil {
				t.Fatalf("no ARP layer in % x", d.Reply)
			}
			if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 || a.HwAddressSize != 6 ||
				a.ProtAddressSize != 4 || a.Operation != layers.ARPReply ||
				!bytes.Equal(a.SourceHwAddress, macRemote[:]) || !net.IP(a.SourceProtAddress).Equal(net.ParseIP("10.0.0.2")) ||
				!bytes.Equal(a.DstHwAddress, macLocal[:]) || !net.IP(a.DstProtAddress).Equal(net.ParseIP("10.0.0.1")) {
				t.Errorf("ARP reply %+v", a)
			}
			if st := tb.Stats(); st.Answered != 1 || st.Forwarded != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestAnswerNS: a multicast NS for a remote host whose role is known gets
// a solicited, non-override NA with the Target Link-Layer Address option
// (RFC 4861 §7.2.4, §7.2.8) from the target's address, hop limit 255 and a
// valid checksum.
func TestAnswerNS(t *testing.T) {
	for _, c := range []struct {
		name   string
		teach  func(tb *arp.Table)
		vlan   uint16
		router bool
	}{
		{"remote na", func(tb *arp.Table) { mustRemote(t, tb, nodeB, na(t, macRemote, "fd00::2", "fd00::1", fS|fO)) }, 0, false},
		{"remote router", func(tb *arp.Table) { mustRemote(t, tb, nodeB, na(t, macRemote, "fd00::2", "ff02::1", fR|fO)) }, 0, true},
		{"advert", func(tb *arp.Table) {
			tb.Apply(t0, nodeB, &arp.Advert{Hosts: []arp.Host{{IP: ip("fd00::2"), MAC: macRemote, Role: arp.RoleHost}}})
		}, 0, false},
		{"vlan", func(tb *arp.Table) { mustRemote(t, tb, nodeB, na(t, macRemote, "fd00::2", "fd00::1", fS|fO)) }, 7, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := arp.NewTable(arp.Config{})
			c.teach(tb)
			d, err := tb.Local(t0, nsVLAN(t, c.vlan, macLocal, "fd00::1", "fd00::2"))
			if err != nil || d.Forward || d.Reply == nil {
				t.Fatalf("Local: %+v, %v; want a reply and no forward", d, err)
			}
			p := decode(t, d.Reply)
			e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(e.DstMAC, macLocal[:]) || !bytes.Equal(e.SrcMAC, macRemote[:]) {
				t.Errorf("Ethernet %v → %v", e.SrcMAC, e.DstMAC)
			}
			checkVLAN(t, p, c.vlan, layers.EthernetTypeIPv6)
			ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ip6.HopLimit != 255 || ip6.NextHeader != layers.IPProtocolICMPv6 ||
				!ip6.SrcIP.Equal(net.ParseIP("fd00::2")) || !ip6.DstIP.Equal(net.ParseIP("fd00::1")) ||
				int(ip6.Length) != len(ip6.Payload) {
				t.Errorf("IPv6 %+v", ip6)
			}
			ic := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if ic.TypeCode != layers.CreateICMPv6TypeCode(arp.TypeNA, 0) {
				t.Errorf("ICMPv6 %v", ic.TypeCode)
			}
			// gopacket does not verify checksums: recompute it over the
			// reply with the field zeroed.
			if !bytes.Equal(withSum(bytes.Clone(d.Reply)), d.Reply) {
				t.Errorf("checksum %#04x is wrong", ic.Checksum)
			}
			adv := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			if !adv.Solicited() || adv.Override() || adv.Router() != c.router || !adv.TargetAddress.Equal(net.ParseIP("fd00::2")) {
				t.Errorf("NA flags %#02x target %v", adv.Flags, adv.TargetAddress)
			}
			if len(adv.Options) != 1 || adv.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(adv.Options[0].Data, macRemote[:]) {
				t.Errorf("NA options %v", adv.Options)
			}
			if _, err := arp.ParseND(d.Reply); err != nil {
				t.Errorf("our own reply does not parse: %v", err)
			}
		})
	}
}

// checkVLAN checks that p has the 802.1Q tag of the test requests (VLAN
// vlan, priority 5) around inner, or no tag when vlan is 0.
func checkVLAN(t *testing.T, p gopacket.Packet, vlan uint16, inner layers.EthernetType) {
	t.Helper()
	q, _ := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	e := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	switch {
	case vlan == 0 && (q != nil || e.EthernetType != inner):
		t.Errorf("untagged request, reply %v with tag %+v", e.EthernetType, q)
	case vlan != 0 && (q == nil || q.VLANIdentifier != vlan || q.Priority != 5 || q.Type != inner):
		t.Errorf("request in VLAN %d, reply tag %+v", vlan, q)
	}
}

func mustRemote(t testing.TB, tb *arp.Table, from nodeid.ID, f []byte) {
	t.Helper()
	if err := tb.Remote(t0, from, f); err != nil {
		t.Fatal(err)
	}
}
