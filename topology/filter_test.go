package topology

import (
	"net/netip"
	"slices"
	"testing"
)

func TestFilterAllows(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		src  string
		want bool
	}{
		{"INCLUDE{} admits nobody", incl(), "10.0.0.1", false},
		{"EXCLUDE{} admits anyone", excl(), "10.0.0.1", true},
		{"INCLUDE listed", incl("10.0.0.1", "10.0.0.7"), "10.0.0.7", true},
		{"INCLUDE unlisted", incl("10.0.0.1", "10.0.0.7"), "10.0.0.5", false},
		{"EXCLUDE listed", excl("10.0.0.1", "10.0.0.7"), "10.0.0.1", false},
		{"EXCLUDE unlisted", excl("10.0.0.1", "10.0.0.7"), "10.0.0.2", true},
		{"INCLUDE IPv6", incl("2001:db8::1", "fd00::9"), "fd00::9", true},
		{"EXCLUDE IPv6", excl("2001:db8::1", "fd00::9"), "fd00::9", false},
		// A frame's IPv4 source is 4 bytes; the 4-in-6 spelling is another
		// address, as the documentation of Allows warns.
		{"4-in-6 is not IPv4", incl("10.0.0.1"), "::ffff:10.0.0.1", false},
		{"unknown mode admits nobody", Filter{Mode: 7}, "10.0.0.1", false},
	} {
		if got := tc.f.Allows(ip(tc.src)); got != tc.want {
			t.Errorf("%s: %v.Allows(%s) = %v, want %v", tc.name, tc.f, tc.src, got, tc.want)
		}
	}
}

func TestFilterAllowsLongList(t *testing.T) {
	var f Filter
	for i := range MaxSources {
		f.Sources = append(f.Sources, netip.AddrFrom4([4]byte{10, 1, byte(i), 1}))
	}
	for i := range MaxSources {
		if !f.Allows(netip.AddrFrom4([4]byte{10, 1, byte(i), 1})) || f.Allows(netip.AddrFrom4([4]byte{10, 1, byte(i), 2})) {
			t.Fatalf("source %d misjudged", i)
		}
	}
}

func TestFilterString(t *testing.T) {
	if got := incl("10.0.0.1", "10.0.0.2").String(); got != "INCLUDE{10.0.0.1,10.0.0.2}" {
		t.Errorf("got %q", got)
	}
	if got := excl().String(); got != "EXCLUDE{}" {
		t.Errorf("got %q", got)
	}
}

func TestNormalize(t *testing.T) {
	g4, g6 := ip("232.1.1.1"), ip("ff3e::8000:1")
	for _, tc := range []struct {
		name  string
		group netip.Addr
		in    Filter
		want  Filter
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
	if _, ok := normalize(g4, Filter{Mode: 2}); ok {
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
	in, _ := normalize(g, Filter{Mode: Include, Sources: many})
	ex, _ := normalize(g, Filter{Mode: Exclude, Sources: many})
	if !in.Equal(excl()) {
		t.Errorf("INCLUDE over the limit became %v, want EXCLUDE{}", in.Mode)
	}
	if ex.Mode != Exclude || len(ex.Sources) != MaxSources {
		t.Errorf("EXCLUDE over the limit: %v with %d sources", ex.Mode, len(ex.Sources))
	}
	probe := append(slices.Clone(many), ip("10.9.9.9"), ip("10.2.0.3"))
	for _, s := range probe {
		for _, c := range []struct{ asked, got Filter }{
			{Filter{Mode: Include, Sources: many}, in},
			{Filter{Mode: Exclude, Sources: many}, ex},
		} {
			if c.asked.Allows(s) && !c.got.Allows(s) {
				t.Fatalf("%v widened to %v refuses %v", c.asked.Mode, c.got.Mode, s)
			}
		}
	}
}
