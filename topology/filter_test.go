package topology

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipopd/ipopd/igmp/filter"
)

func TestNormalize(t *testing.T) {
	g4, g6 := ip("232.1.1.1"), ip("ff3e::8000:1")
	for _, tc := range []struct {
		name  string
		group netip.Addr
		in    filter.Filter
		want  filter.Filter
	}{
		{"sorted and unique", g4, incl("10.0.0.9", "10.0.0.1", "10.0.0.9"), incl("10.0.0.1", "10.0.0.9")},
		{"4-in-6 unmapped", g4, incl("::ffff:10.0.0.1"), incl("10.0.0.1")},
		{"other family dropped", g4, excl("fd00::1", "10.0.0.1"), excl("10.0.0.1")},
		{"4-in-6 is no IPv6 source", g6, incl("::ffff:10.0.0.1", "fd00::1"), incl("fd00::1")},
		{"multicast and unspecified dropped", g4, incl("224.0.0.1", "0.0.0.0", "10.0.0.1"), incl("10.0.0.1")},
		{"zone dropped", g6, incl("fe80::1%eth0"), incl("fe80::1")},
		{"only bad sources: left", g4, incl("fd00::1"), incl()},
	} {
		got, ok := normalize(tc.group, tc.in)
		if !ok || !got.Equal(tc.want) {
			t.Errorf("%s: normalize(%v) = %v, %v; want %v", tc.name, tc.in, got, ok, tc.want)
		}
	}
	if _, ok := normalize(g4, filter.Filter{Mode: 2}); ok {
		t.Error("unknown mode accepted")
	}
}

// Over MaxSources the filter must admit a superset of what was asked:
// hosts drop unwanted sources themselves, while a missed source is lost.
func TestNormalizeWidens(t *testing.T) {
	g := ip("232.1.1.1")
	var many []netip.Addr
	for i := range MaxSources + 10 {
		many = append(many, netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}))
	}
	in, _ := normalize(g, filter.Filter{Mode: filter.Include, Sources: many})
	ex, _ := normalize(g, filter.Filter{Mode: filter.Exclude, Sources: many})
	if !in.Equal(excl()) {
		t.Errorf("INCLUDE over the limit became %v, want EXCLUDE{}", in.Mode)
	}
	if ex.Mode != filter.Exclude || len(ex.Sources) != MaxSources {
		t.Errorf("EXCLUDE over the limit: %v with %d sources", ex.Mode, len(ex.Sources))
	}
	probe := append(slices.Clone(many), ip("10.9.9.9"), ip("10.2.0.3"))
	for _, s := range probe {
		for _, c := range []struct{ asked, got filter.Filter }{
			{filter.Filter{Mode: filter.Include, Sources: many}, in},
			{filter.Filter{Mode: filter.Exclude, Sources: many}, ex},
		} {
			if c.asked.Allows(s) && !c.got.Allows(s) {
				t.Fatalf("%v widened to %v refuses %v", c.asked.Mode, c.got.Mode, s)
			}
		}
	}
}
