package filter

import (
	"net/netip"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func incl(ss ...string) Filter { return Filter{Mode: Include, Sources: addrs(ss...)} }
func excl(ss ...string) Filter { return Filter{Mode: Exclude, Sources: addrs(ss...)} }

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		src  string
		want bool
	}{
		{"INCLUDE{} admits nobody", incl(), "10.0.0.1", false},
		{"zero filter admits nobody", Filter{}, "10.0.0.1", false},
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
		if got := tc.f.Allows(netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("%s: %v.Allows(%s) = %v, want %v", tc.name, tc.f, tc.src, got, tc.want)
		}
	}
}

// TestAllowsLongList covers the binary search past linearMax.
func TestAllowsLongList(t *testing.T) {
	var f Filter
	for i := range 64 {
		f.Sources = append(f.Sources, netip.AddrFrom4([4]byte{10, 1, byte(i), 1}))
	}
	for i := range 64 {
		if !f.Allows(netip.AddrFrom4([4]byte{10, 1, byte(i), 1})) || f.Allows(netip.AddrFrom4([4]byte{10, 1, byte(i), 2})) {
			t.Fatalf("source %d misjudged", i)
		}
	}
}

func TestString(t *testing.T) {
	for f, want := range map[*Filter]string{
		{Mode: Include, Sources: addrs("10.0.0.1", "10.0.0.2")}: "INCLUDE{10.0.0.1,10.0.0.2}",
		{Mode: Exclude}: "EXCLUDE{}",
		{}:              "INCLUDE{}",
		{Mode: 9}:       "MODE?{}",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#v: got %q, want %q", *f, got, want)
		}
	}
}

func TestEmptyEqualClone(t *testing.T) {
	if !(Filter{}).Empty() || !incl().Empty() || excl().Empty() || incl("10.0.0.1").Empty() {
		t.Error("Empty")
	}
	a := incl("10.0.0.1", "10.0.0.2")
	c := a.Clone()
	if !c.Equal(a) || c.Equal(excl("10.0.0.1", "10.0.0.2")) || c.Equal(incl("10.0.0.1")) {
		t.Error("Equal")
	}
	c.Sources[0] = netip.MustParseAddr("10.9.9.9")
	if a.Sources[0] != netip.MustParseAddr("10.0.0.1") {
		t.Error("Clone shares Sources")
	}
	if e := excl().Clone(); e.Sources != nil || e.Mode != Exclude {
		t.Errorf("Clone of EXCLUDE{} = %#v", e)
	}
}
