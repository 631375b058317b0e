package topology

import (
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// Each change is one delta with the next Seq; replaying the deltas over the
// first full state gives the latest one.
func TestAdvertiserDeltas(t *testing.T) {
	a := NewAdvertiser(42)
	if f := a.Full(); f.Kind != KindFull || f.Epoch != 42 || f.Seq != 0 || len(f.Groups) != 0 || f.Refresh != DefaultRefresh {
		t.Fatalf("initial full %+v", f)
	}
	steps := []struct {
		group   string
		f       filter.Filter
		changed bool
	}{
		{"239.1.1.1", excl(), true},
		{"239.1.1.1", excl(), false}, // the same again: nothing to say
		{"232.1.1.1", incl("10.0.0.2", "10.0.0.1"), true},
		{"232.1.1.1", incl("10.0.0.1", "10.0.0.2", "10.0.0.1"), false}, // same once normalized
		{"ff3e::8000:1", incl("fd00::1"), true},
		{"239.1.1.1", excl("10.0.0.9"), true},
		{"232.1.1.1", incl(), true},  // leave
		{"232.9.9.9", incl(), false}, // leaving what was never joined
		{"::ffff:239.1.1.1", excl(), true},
	}
	model := make(map[netip.Addr]filter.Filter)
	for i, s := range steps {
		seq := a.Seq()
		delta, changed := a.Set(ip(s.group), s.f)
		if changed != s.changed || (delta != nil) != changed {
			t.Fatalf("step %d: Set(%s, %v) = %v, %v", i, s.group, s.f, delta, changed)
		}
		if !changed {
			if a.Seq() != seq {
				t.Fatalf("step %d: Seq moved without a change", i)
			}
			continue
		}
		if delta.Kind != KindDelta || delta.Epoch != 42 || delta.Seq != seq+1 || a.Seq() != seq+1 || len(delta.Groups) != 1 {
			t.Fatalf("step %d: delta %+v after Seq %d", i, delta, seq)
		}
		g := delta.Groups[0]
		if g.Filter.Empty() {
			delete(model, g.Addr)
		} else {
			model[g.Addr] = g.Filter
		}
		mustRoundTrip(t, delta)
	}
	if got := a.Groups(); !maps.EqualFunc(got, model, filter.Filter.Equal) {
		t.Fatalf("Groups %v, deltas say %v", got, model)
	}
	full := mustRoundTrip(t, a.Full())
	if full.Seq != a.Seq() || len(full.Groups) != len(model) {
		t.Fatalf("full %+v at Seq %d, want %d groups", full, a.Seq(), len(model))
	}
	for _, g := range full.Groups {
		if !g.Filter.Equal(model[g.Addr]) {
			t.Errorf("full has %v %v, state %v", g.Addr, g.Filter, model[g.Addr])
		}
	}
	if !model[ip("239.1.1.1")].Equal(excl()) {
		t.Errorf("4-in-6 group did not land on its IPv4 form: %v", model)
	}
}

// What Set hands out is a copy: changing it leaves the state alone.
func TestAdvertiserCopies(t *testing.T) {
	a := NewAdvertiser(1)
	src := ips("10.0.0.1", "10.0.0.2")
	delta, _ := a.Set(ip("232.0.0.5"), filter.Filter{Mode: filter.Include, Sources: src})
	src[0] = ip("10.9.9.9")
	delta.Groups[0].Filter.Sources[1] = ip("10.8.8.8")
	a.Groups()[ip("232.0.0.5")].Sources[0] = ip("10.7.7.7")
	a.Full().Groups[0].Filter.Sources[0] = ip("10.6.6.6")
	if got := a.Groups()[ip("232.0.0.5")]; !got.Equal(incl("10.0.0.1", "10.0.0.2")) {
		t.Fatalf("state changed through a returned slice: %v", got)
	}
}

func TestAdvertiserRefuses(t *testing.T) {
	a := NewAdvertiser(1)
	for _, g := range []netip.Addr{{}, ip("10.0.0.1"), ip("fd00::1"), ip("::ffff:10.0.0.1")} {
		if d, changed := a.Set(g, excl()); d != nil || changed {
			t.Errorf("Set(%v) accepted a non-group", g)
		}
	}
	if _, changed := a.Set(ip("239.0.0.1"), filter.Filter{Mode: 9}); changed {
		t.Error("unknown mode accepted")
	}
	for i := range MaxNodeGroups {
		if _, changed := a.Set(netip.AddrFrom4([4]byte{239, 1, byte(i >> 8), byte(i)}), excl()); !changed {
			t.Fatalf("group %d refused", i)
		}
	}
	if _, changed := a.Set(ip("239.2.0.0"), excl()); changed {
		t.Error("group beyond MaxNodeGroups accepted")
	}
	if a.Refused() != 6 {
		t.Errorf("Refused = %d, want 6", a.Refused())
	}
	// Changing or leaving a group still works at the limit.
	if _, changed := a.Set(ip("239.1.0.0"), excl("10.0.0.1")); !changed {
		t.Error("change at the limit refused")
	}
	if _, changed := a.Set(ip("239.1.0.1"), incl()); !changed {
		t.Error("leave at the limit refused")
	}
	// The largest state still goes: in parts, each within the budget.
	parts := a.FullParts(1200)
	n := 0
	for i, p := range parts {
		if p.Kind != KindPart || p.Part != i || p.Parts != len(parts) || p.Size() > 1200 {
			t.Fatalf("part %d: %v %d of %d, %d bytes", i, p.Kind, p.Part, p.Parts, p.Size())
		}
		mustRoundTrip(t, p)
		n += len(p.Groups)
	}
	if n != MaxNodeGroups-1 { // one left above
		t.Errorf("%d parts carry %d groups, want %d", len(parts), n, MaxNodeGroups-1)
	}
}

// Sources count against MaxNodeEntries: a new group beyond is refused, a
// changed filter beyond is widened to every source.
func TestAdvertiserEntries(t *testing.T) {
	a := NewAdvertiser(1)
	var srcs []string
	for i := range MaxSources {
		srcs = append(srcs, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String())
	}
	many := incl(srcs...)
	// 254 × 257 + 2 + 256 = 65,536 entries: full.
	for i := range 254 {
		if _, changed := a.Set(netip.AddrFrom4([4]byte{232, 1, 0, byte(i)}), many); !changed {
			t.Fatalf("group %d refused", i)
		}
	}
	if _, changed := a.Set(ip("232.9.9.9"), incl("10.1.1.1")); !changed {
		t.Fatal("a channel within MaxNodeEntries refused")
	}
	for i := range 256 {
		if _, changed := a.Set(netip.AddrFrom4([4]byte{239, 9, 0, byte(i)}), excl()); !changed {
			t.Fatalf("any-source group %d refused", i)
		}
	}
	if _, changed := a.Set(ip("239.9.9.10"), excl()); changed || a.Refused() != 1 {
		t.Errorf("a group beyond MaxNodeEntries: changed %v, refused %d", changed, a.Refused())
	}
	d, changed := a.Set(ip("232.1.0.0"), incl(append(srcs[1:], "10.9.9.9")...))
	if !changed || a.Widened() != 0 || len(d.Groups[0].Filter.Sources) != MaxSources {
		t.Fatalf("same number of sources: changed %v, widened %d", changed, a.Widened())
	}
	// One source more: widened to every source, which costs fewer entries.
	if _, changed := a.Set(ip("232.9.9.9"), incl("10.1.1.1", "10.1.1.2")); !changed || a.Widened() != 1 {
		t.Errorf("a source beyond MaxNodeEntries: changed %v, widened %d", changed, a.Widened())
	}
	if f := a.Groups()[ip("232.9.9.9")]; !f.Equal(excl()) {
		t.Errorf("widened filter %v, want EXCLUDE{}", f)
	}
	// Offered again (each refresh does): still over, nothing changes.
	if _, changed := a.Set(ip("232.9.9.9"), incl("10.1.1.1", "10.1.1.2")); changed || a.Widened() != 1 {
		t.Errorf("widening what is EXCLUDE{} already: changed %v, widened %d", changed, a.Widened())
	}
	// Room again: the refused group gets in when offered again.
	a.Set(ip("239.9.0.0"), incl())
	if _, changed := a.Set(ip("239.9.9.10"), excl()); !changed {
		t.Error("the refused group not taken once there was room")
	}
}

func TestAdvertiserSetRefresh(t *testing.T) {
	a := NewAdvertiser(1)
	for _, tc := range []struct{ in, want time.Duration }{
		{10 * time.Second, 10 * time.Second},
		{1500 * time.Millisecond, 2 * time.Second},
		{0, time.Second},
		{-time.Hour, time.Second},
		{100 * time.Hour, MaxRefresh},
	} {
		a.SetRefresh(tc.in)
		if a.Refresh() != tc.want || a.Full().Refresh != tc.want {
			t.Errorf("SetRefresh(%v): %v, want %v", tc.in, a.Refresh(), tc.want)
		}
	}
	mustRoundTrip(t, a.Full())
}

// A state that is one group bigger than the budget (an IPv6 channel with
// many sources) goes as one full state: a part of one is not a message.
func TestAdvertiserOneBigGroup(t *testing.T) {
	a := NewAdvertiser(1)
	f := incl()
	for i := range 100 {
		f.Sources = append(f.Sources, netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}))
	}
	a.Set(ip("ff3e::1"), f)
	a.Set(ip("ff3e::2"), excl())
	parts := a.FullParts(1100)
	for _, p := range parts {
		mustRoundTrip(t, p)
	}
	a.Set(ip("ff3e::2"), incl())
	parts = a.FullParts(1100)
	if len(parts) != 1 || parts[0].Kind != KindFull || parts[0].Size() <= 1100 {
		t.Fatalf("%d messages, first %v of %d bytes", len(parts), parts[0].Kind, parts[0].Size())
	}
	mustRoundTrip(t, parts[0])
}
