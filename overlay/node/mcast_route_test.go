package node

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// udpFrame builds an Ethernet + IP + UDP frame from src to group (v4 or v6).
func udpFrame(src, group netip.Addr) []byte {
	f := make([]byte, 14)
	f[0] = 0x01 // group bit
	if group.Is4() {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := make([]byte, 28)
		ip[0], ip[8], ip[9] = 0x45, 1, 17
		s, g := src.As4(), group.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], g[:])
		return append(f, ip...)
	}
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	ip := make([]byte, 48)
	ip[0], ip[6], ip[7] = 0x60, 17, 1
	s, g := src.As16(), group.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], g[:])
	return append(f, ip...)
}

func TestRouteAndDeliver(t *testing.T) {
	alpha, beta := nodeid.ID{1}, nodeid.ID{2}
	src, other := netip.MustParseAddr("10.254.0.3"), netip.MustParseAddr("10.254.0.4")
	g, ssm, ll := netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("224.0.0.251")
	table := topology.NewTable()
	now := time.Now()
	table.Apply(alpha, &topology.Message{Kind: topology.KindFull, Epoch: 1, Seq: 1, Refresh: time.Minute, Groups: []topology.Group{
		{Addr: ssm, Filter: filter.Filter{Mode: filter.Include, Sources: []netip.Addr{src}}}, // groups ascend
		{Addr: g, Filter: filter.Filter{Mode: filter.Exclude}},
	}}, now)
	table.Apply(beta, &topology.Message{Kind: topology.KindFull, Epoch: 1, Seq: 1, Refresh: time.Minute, Groups: []topology.Group{
		{Addr: g, Filter: filter.Filter{Mode: filter.Exclude, Sources: []netip.Addr{src}}},
	}}, now)
	mc := &mcast{}
	mc.state.Store(&mcastState{view: table.View(), stats: newGroupStats(), local: map[netip.Addr]filter.Filter{
		g: {Mode: filter.Include, Sources: []netip.Addr{src}},
	}})

	cases := []struct {
		name   string
		frame  []byte
		action overlay.Action
		to     []nodeid.ID
	}{
		{"any-source group, beta excludes src", udpFrame(src, g), overlay.To, []nodeid.ID{alpha}},
		{"any-source group, other source", udpFrame(other, g), overlay.To, []nodeid.ID{alpha, beta}},
		{"ssm group, allowed source", udpFrame(src, ssm), overlay.To, []nodeid.ID{alpha}},
		{"ssm group, other source", udpFrame(other, ssm), overlay.To, nil},
		{"no subscriber", udpFrame(src, netip.MustParseAddr("239.9.9.9")), overlay.To, nil},
		{"link-scope v4", udpFrame(src, ll), overlay.Flood, nil},
		{"link-scope v6", udpFrame(netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::fb")), overlay.Flood, nil},
		{"runt", []byte{1, 0, 0x5e}, overlay.Flood, nil},
	}
	for _, c := range cases {
		to, action := mc.Route(c.frame, nil)
		if action != c.action || len(to) != len(c.to) {
			t.Errorf("%s: Route = %v %v, want %v %v", c.name, action, to, c.action, c.to)
			continue
		}
		seen := map[nodeid.ID]bool{}
		for _, id := range to {
			seen[id] = true
		}
		for _, id := range c.to {
			if !seen[id] {
				t.Errorf("%s: %x missing from %v", c.name, id[:1], to)
			}
		}
	}
	if c := mc.state.Load().stats.get(g); c.fwdFrames.Load() != 3 {
		t.Errorf("forwarded frames of %s = %d, want 3 (1 + 2 subscribers)", g, c.fwdFrames.Load())
	}

	// Delivery: only to local members, and only from admitted sources.
	for _, c := range []struct {
		frame []byte
		want  bool
	}{
		{udpFrame(src, g), true},
		{udpFrame(other, g), false},
		{udpFrame(src, netip.MustParseAddr("239.9.9.9")), false},
		{udpFrame(src, ll), true},
	} {
		if got := mc.Deliver(c.frame); got != c.want {
			g, s, _ := ipMulticast(c.frame)
			t.Errorf("Deliver(%s from %s) = %v, want %v", g, s, got, c.want)
		}
	}
}

func FuzzIPMulticast(f *testing.F) {
	f.Add(udpFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("239.1.1.1")))
	f.Add(udpFrame(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("ff15::1")))
	f.Add([]byte{1, 0, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 7, 0x08, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		g, _, ok := ipMulticast(frame)
		if ok && !g.IsMulticast() {
			t.Fatalf("ipMulticast accepted non-multicast %s", g)
		}
		if ok {
			linkScope(g)
		}
	})
}
