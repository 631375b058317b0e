package igmp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkReportManyGroups: one IGMPv3 report (a group's IS_EX, as
// hosts answer queries) into a router that already holds n groups.
func BenchmarkReportManyGroups(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r, err := New(testConfig(), t0)
			if err != nil {
				b.Fatal(err)
			}
			frames := make([][]byte, n)
			for i := range frames {
				g := netip.AddrFrom4([4]byte{239, 9, byte(i >> 8), byte(i)})
				frames[i] = frame(b, hostMAC, h1, igmpv3Dst, &Message{Type: TypeIGMPv3Report, Version: 3, Records: []Record{rec(ModeIsExclude, g)}})
				if err := r.Input(t0, frames[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := r.Input(t0, frames[i%n]); err != nil {
					b.Fatal(err)
				}
				r.Next()
			}
		})
	}
}

// bruteNext is Next as a scan of every timer, the way it was computed
// before the heap.
func bruteNext(r *Router) time.Time {
	var t time.Time
	for _, f := range r.fams {
		if f == nil {
			continue
		}
		t = earliest(t, earliest(f.queryTimer, f.otherTimer))
		for _, g := range f.groups {
			t = earliest(t, g.earliest())
		}
	}
	return t
}

// The heap (timers.go) gives the same next deadline as a scan, through
// random reports, leaves and source changes on many groups over time,
// with the router firing whatever falls due.
func TestTimersAgainstScan(t *testing.T) {
	for seed := range uint64(30) {
		rnd := rand.New(rand.NewPCG(seed, 9))
		g := newRig(t, testConfig())
		groups := make([]netip.Addr, 40)
		for i := range groups {
			groups[i] = netip.AddrFrom4([4]byte{239, 8, 0, byte(i + 1)})
		}
		srcs := []netip.Addr{sa, sb, sc}
		for step := range 300 {
			g.at(g.now.Sub(t0) + time.Duration(rnd.IntN(4000))*time.Millisecond)
			grp := groups[rnd.IntN(len(groups))]
			typ := RecordType(1 + rnd.IntN(6))
			var b []netip.Addr
			for _, s := range srcs {
				if rnd.IntN(2) == 0 {
					b = append(b, s)
				}
			}
			if rnd.IntN(5) == 0 {
				g.send(h1, grp, v2report(grp))
			} else {
				g.v3(rec(typ, grp, b...))
			}
			if got, want := g.r.Next(), bruteNext(g.r); !got.Equal(want) {
				t.Fatalf("seed %d step %d: Next %v, a scan says %v", seed, step, got.Sub(t0), want.Sub(t0))
			}
		}
	}
}
