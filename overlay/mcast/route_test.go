package mcast

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
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
	mc := &Plane{}
	mc.state.Store(&state{view: table.View(), stats: newGroupStats(), local: map[netip.Addr]filter.Filter{
		g: {Mode: filter.Include, Sources: []netip.Addr{src}},
	}})

	cases := []struct {
		name   string
		frame  []byte
		action dataplane.Action
		to     []nodeid.ID
	}{
		{"any-source group, beta excludes src", udpFrame(src, g), dataplane.To, []nodeid.ID{alpha}},
		{"any-source group, other source", udpFrame(other, g), dataplane.To, []nodeid.ID{alpha, beta}},
		{"ssm group, allowed source", udpFrame(src, ssm), dataplane.To, []nodeid.ID{alpha}},
		{"ssm group, other source", udpFrame(other, ssm), dataplane.To, nil},
		{"no subscriber", udpFrame(src, netip.MustParseAddr("239.9.9.9")), dataplane.To, nil},
		{"link-scope v4", udpFrame(src, ll), dataplane.Flood, nil},
		{"link-scope v6", udpFrame(netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::fb")), dataplane.Flood, nil},
		{"multicast MAC, not IP", append(udpFrame(src, g)[:12], 0x88, 0xb5, 0, 0), dataplane.Flood, nil},
	}
	for _, c := range cases {
		p := tap.Parse(c.frame)
		to, action := mc.Route(&p, c.frame, nil)
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
		p := tap.Parse(c.frame)
		if got := mc.Deliver(&p, c.frame); got != c.want {
			t.Errorf("Deliver(%s from %s) = %v, want %v", p.Dst, p.Src, got, c.want)
		}
	}
}

// FuzzRoute: whatever frame the TAP or a link hands over, routing and
// delivery decide without panicking, targets are only subscribed nodes,
// and only IP multicast groups are ever sent to a node list.
func FuzzRoute(f *testing.F) {
	f.Add(udpFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("239.1.1.1")))
	f.Add(udpFrame(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("ff15::1")))
	f.Add([]byte{1, 0, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x81, 0, 0, 7, 0x08, 0})
	sub := nodeid.ID{7}
	table := topology.NewTable()
	table.Apply(sub, &topology.Message{Kind: topology.KindFull, Epoch: 1, Seq: 1, Refresh: time.Minute, Groups: []topology.Group{
		{Addr: netip.MustParseAddr("239.1.1.1"), Filter: filter.Filter{Mode: filter.Exclude}},
	}}, time.Now())
	mc := &Plane{}
	mc.state.Store(&state{view: table.View(), stats: newGroupStats(), local: map[netip.Addr]filter.Filter{
		netip.MustParseAddr("239.1.1.1"): {Mode: filter.Exclude},
	}})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p := tap.Parse(frame)
		if p.Class != tap.ClassMulticast {
			return // the data plane asks only about multicast frames
		}
		to, action := mc.Route(&p, frame, nil)
		if action == dataplane.To {
			if g, _, ok := p.Group(); !ok || !g.IsMulticast() {
				t.Fatalf("%v sent to nodes", p)
			}
			for _, id := range to {
				if id != sub {
					t.Fatalf("sent to unsubscribed %s", id.Short())
				}
			}
		} else if len(to) != 0 {
			t.Fatalf("%v with targets %v", action, to)
		}
		mc.Deliver(&p, frame)
	})
}
