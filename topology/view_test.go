package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// tableOf builds a Table in which node i has joined groups[g] with
// filters[i][g] (INCLUDE{} = not joined).
func tableOf(t testing.TB, groups []netip.Addr, filters [][]filter.Filter) *Table {
	tb := NewTable()
	for i, fs := range filters {
		a := NewAdvertiser(uint64(i))
		for g, f := range fs {
			a.Set(groups[g], f)
		}
		tb.Apply(nodeID(byte(i)), a.Full(), epoch0)
	}
	return tb
}

func TestTargets(t *testing.T) {
	g1, g2, g6 := ip("239.1.1.1"), ip("232.1.1.1"), ip("ff3e::1")
	groups := []netip.Addr{g1, g2, g6}
	v := tableOf(t, groups, [][]filter.Filter{
		{excl(), incl("10.0.0.1"), excl("fd00::1")},
		{excl("10.0.0.1"), incl("10.0.0.1", "10.0.0.2"), incl()},
		{incl(), excl("10.0.0.2"), incl("fd00::1")},
		{excl(), incl(), excl()},
	}).View()
	for _, tc := range []struct {
		group, src string
		want       []byte // node numbers, in node ID order
	}{
		{"239.1.1.1", "10.0.0.1", []byte{0, 3}},
		{"239.1.1.1", "10.0.0.9", []byte{0, 1, 3}},
		{"232.1.1.1", "10.0.0.1", []byte{0, 1, 2}},
		{"232.1.1.1", "10.0.0.2", []byte{1}},
		{"232.1.1.1", "10.0.0.3", []byte{2}},
		{"ff3e::1", "fd00::1", []byte{2, 3}},
		{"ff3e::1", "fd00::2", []byte{0, 3}},
		{"239.9.9.9", "10.0.0.1", nil}, // nobody joined
	} {
		var want []nodeid.ID
		for _, n := range tc.want {
			want = append(want, nodeID(n))
		}
		// Appends after what dst holds, and leaves that alone.
		prefix := []nodeid.ID{nodeID(99)}
		got := v.Targets(ip(tc.group), ip(tc.src), prefix)
		if got[0] != nodeID(99) || !slices.Equal(got[1:], want) {
			t.Errorf("Targets(%s, %s) = %v, want %v", tc.group, tc.src, got[1:], tc.want)
		}
	}
	if got := v.Nodes(g2); len(got) != 3 || !got[0].Filter.Equal(incl("10.0.0.1")) || !got[0].Since.Equal(epoch0) {
		t.Errorf("Nodes(%v) = %v", g2, got)
	}
	if got := v.Groups(); !slices.Equal(got, []netip.Addr{g2, g1, g6}) {
		t.Errorf("Groups = %v", got)
	}
}

// Each node has one filter per group, so no node can come back twice, even
// when many nodes share a group with overlapping filters.
func TestTargetsOnce(t *testing.T) {
	g := ip("232.0.0.1")
	var filters [][]filter.Filter
	for i := range 40 {
		f := excl()
		switch i % 3 {
		case 1:
			f = incl("10.0.0.1", "10.0.0.2")
		case 2:
			f = excl("10.0.0.2")
		}
		filters = append(filters, []filter.Filter{f})
	}
	v := tableOf(t, []netip.Addr{g}, filters).View()
	for _, src := range ips("10.0.0.1", "10.0.0.2", "10.0.0.3") {
		got := v.Targets(g, src, nil)
		seen := make(map[nodeid.ID]bool)
		for _, id := range got {
			if seen[id] {
				t.Fatalf("Targets(%v, %v): %s twice", g, src, id.Short())
			}
			seen[id] = true
		}
		if want := map[string]int{"10.0.0.1": 40, "10.0.0.2": 27, "10.0.0.3": 27}[src.String()]; len(got) != want {
			t.Errorf("Targets(%v, %v): %d nodes, want %d", g, src, len(got), want)
		}
	}
}

// benchView is 100 groups × 50 nodes: groups 0..79 any-source, the others
// source-specific with one of three sources per node.
func benchView(tb testing.TB) (*View, []netip.Addr) {
	var groups []netip.Addr
	for i := range 100 {
		groups = append(groups, netip.AddrFrom4([4]byte{232, 0, 0, byte(i)}))
	}
	var filters [][]filter.Filter
	for n := range 50 {
		var fs []filter.Filter
		for g := range groups {
			f := excl()
			if g >= 80 {
				f = incl(fmt.Sprintf("10.0.0.%d", 1+(n+g)%3))
			}
			fs = append(fs, f)
		}
		filters = append(filters, fs)
	}
	return tableOf(tb, groups, filters).View(), groups
}

func TestTargetsAllocs(t *testing.T) {
	v, groups := benchView(t)
	dst := make([]nodeid.ID, 0, 50)
	src := ip("10.0.0.1")
	for _, g := range []netip.Addr{groups[0], groups[99], ip("239.9.9.9")} {
		if n := testing.AllocsPerRun(100, func() { dst = v.Targets(g, src, dst[:0]) }); n != 0 {
			t.Errorf("Targets(%v) allocates %v times per call", g, n)
		}
	}
}

func BenchmarkTargets(b *testing.B) {
	v, groups := benchView(b)
	src := ip("10.0.0.1")
	for _, c := range []struct {
		name   string
		groups []netip.Addr
	}{{"any-source", groups[:80]}, {"source-specific", groups[80:]}} {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]nodeid.ID, 0, 50)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				dst = v.Targets(c.groups[i%len(c.groups)], src, dst[:0])
				i++
			}
		})
	}
}

// Building a View is the control loop's cost per membership change.
func BenchmarkBuildView(b *testing.B) {
	var groups []netip.Addr
	for i := range 100 {
		groups = append(groups, netip.AddrFrom4([4]byte{232, 0, 0, byte(i)}))
	}
	tb := tableOf(b, groups, slices.Repeat([][]filter.Filter{slices.Repeat([]filter.Filter{excl()}, 100)}, 50))
	b.ReportAllocs()
	for b.Loop() {
		tb.view = nil
		tb.View()
	}
}
