package igmp

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// q describes an expected specific query: the sources asked about and S.
type q struct {
	sources []netip.Addr
	s       bool
}

func (x q) String() string { return fmt.Sprintf("Q(G,%v,S=%v)", x.sources, x.s) }

// specific returns the group-specific queries among what the router sent.
func (g *rig) specific() []q {
	var out []q
	for _, s := range g.out() {
		if s.m.Group.IsUnspecified() {
			continue
		}
		if s.dst != s.m.Group {
			g.t.Fatalf("specific query for %v sent to %v", s.m.Group, s.dst)
		}
		out = append(out, q{s.m.Sources, s.m.Suppress})
	}
	return out
}

// TestRFC3376Tables walks the router-state tables of RFC 3376 §6.4.1
// (current-state records) and §6.4.2 (state-change records), with the
// query actions of §6.6.3. Timers are checked 10 s after the state was
// set up, so untouched ones read GMI-10 s = 250 s; GMI is 260 s, LMQT 2 s.
func TestRFC3376Tables(t *testing.T) {
	include := []Record{rec(AllowNewSources, grp, sa, sb)}                          // INCLUDE (A={a,b})
	exclude := []Record{rec(ModeIsExclude, grp, sb), rec(AllowNewSources, grp, sa)} // EXCLUDE (X={a}, Y={b})
	type timers = map[netip.Addr]time.Duration
	for _, c := range []struct {
		name    string
		setup   []Record
		rec     Record
		filter  filter.Filter
		timers  timers        // every source and its timer (0 = Y)
		gt      time.Duration // group timer
		queries []q
	}{
		// §6.4.1, INCLUDE (A)
		{"IN(A) IS_IN(B): IN(A+B), (B)=GMI", include, rec(ModeIsInclude, grp, sb, sc),
			incl(sa, sb, sc), timers{sa: 250 * time.Second, sb: gmi, sc: gmi}, 0, nil},
		{"IN(A) IS_EX(B): EX(A*B,B-A), (B-A)=0, del A-B, GT=GMI", include, rec(ModeIsExclude, grp, sb, sc),
			excl(sc), timers{sb: 250 * time.Second, sc: 0}, gmi, nil},
		// §6.4.1, EXCLUDE (X,Y)
		{"EX(X,Y) IS_IN(A): EX(X+A,Y-A), (A)=GMI", exclude, rec(ModeIsInclude, grp, sb, sc),
			excl(), timers{sa: 250 * time.Second, sb: gmi, sc: gmi}, 250 * time.Second, nil},
		{"EX(X,Y) IS_EX(A): EX(A-Y,Y*A), (A-X-Y)=GMI, del X-A, Y-A, GT=GMI", exclude, rec(ModeIsExclude, grp, sb, sc),
			excl(sb), timers{sb: 0, sc: gmi}, gmi, nil},
		// §6.4.2, INCLUDE (A)
		{"IN(A) ALLOW(B): IN(A+B), (B)=GMI", include, rec(AllowNewSources, grp, sc),
			incl(sa, sb, sc), timers{sa: 250 * time.Second, sb: 250 * time.Second, sc: gmi}, 0, nil},
		{"IN(A) BLOCK(B): IN(A), Q(G,A*B)", include, rec(BlockOldSources, grp, sb, sc),
			incl(sa, sb), timers{sa: 250 * time.Second, sb: lmqt}, 0, []q{{set(sb), false}}},
		{"IN(A) TO_EX(B): EX(A*B,B-A), (B-A)=0, del A-B, Q(G,A*B), GT=GMI", include, rec(ChangeToExcludeMode, grp, sb, sc),
			excl(sc), timers{sb: lmqt, sc: 0}, gmi, []q{{set(sb), false}}},
		{"IN(A) TO_IN(B): IN(A+B), (B)=GMI, Q(G,A-B)", include, rec(ChangeToIncludeMode, grp, sb, sc),
			incl(sa, sb, sc), timers{sa: lmqt, sb: gmi, sc: gmi}, 0, []q{{set(sa), false}}},
		// §6.4.2, EXCLUDE (X,Y)
		{"EX(X,Y) ALLOW(A): EX(X+A,Y-A), (A)=GMI", exclude, rec(AllowNewSources, grp, sb),
			excl(), timers{sa: 250 * time.Second, sb: gmi}, 250 * time.Second, nil},
		{"EX(X,Y) BLOCK(A): EX(X+(A-Y),Y), (A-X-Y)=GT, Q(G,A-Y)", exclude, rec(BlockOldSources, grp, sa, sb, sc),
			excl(sb), timers{sa: lmqt, sb: 0, sc: lmqt}, 250 * time.Second, []q{{set(sa, sc), false}}},
		{"EX(X,Y) TO_EX(A): EX(A-Y,Y*A), (A-X-Y)=GT, del X-A, Y-A, Q(G,A-Y), GT=GMI", exclude, rec(ChangeToExcludeMode, grp, sb, sc),
			excl(sb), timers{sb: 0, sc: lmqt}, gmi, []q{{set(sc), false}}},
		{"EX(X,Y) TO_IN(A): EX(X+A,Y-A), (A)=GMI, Q(G,X-A), Q(G)", exclude, rec(ChangeToIncludeMode, grp, sc),
			excl(sb), timers{sa: lmqt, sb: 0, sc: gmi}, lmqt, []q{{nil, false}, {set(sa), false}}},
		// v2 leave, v3 form: TO_IN({}) on EXCLUDE({},{}).
		{"EX({},{}) TO_IN({}): Q(G), GT=LMQT", []Record{rec(ModeIsExclude, grp)}, rec(ChangeToIncludeMode, grp),
			excl(), timers{}, lmqt, []q{{nil, false}}},
	} {
		// RFC 3810 §7.4 is the same table for MLDv2: run each row for
		// IPv6 too, with addresses mapped.
		for _, v6 := range []bool{false, true} {
			to6 := func(a netip.Addr) netip.Addr { return a }
			group, reporter := grp, h1
			if v6 {
				to6 = func(a netip.Addr) netip.Addr { b := a.As4(); return ip(fmt.Sprintf("2001:db8::%d", b[3])) }
				group, reporter = grp6, h1LL
			}
			recs := func(rs ...Record) []Record {
				var out []Record
				for _, r := range rs {
					x := Record{Type: r.Type, Group: group}
					for _, a := range r.Sources {
						x.Sources = append(x.Sources, to6(a))
					}
					out = append(out, x)
				}
				return out
			}
			addrs := func(a []netip.Addr) []netip.Addr {
				var out []netip.Addr
				for _, x := range a {
					out = append(out, to6(x))
				}
				return set(out...)
			}
			t.Run(fmt.Sprintf("%s/v6=%v", c.name, v6), func(t *testing.T) {
				g := newRig(t, testConfig())
				g.at(10 * time.Second)
				g.v3(recs(c.setup...)...)
				g.at(20 * time.Second)
				g.out()
				g.v3(recs(c.rec)...)
				s := g.state(group)
				want := filter.Filter{Mode: c.filter.Mode, Sources: addrs(c.filter.Sources)}
				if !s.Filter.Equal(want) || s.GroupTimer != c.gt {
					t.Errorf("state %v GT %v, want %v GT %v", s.Filter, s.GroupTimer, want, c.gt)
				}
				wantTimers := timers{}
				for a, d := range c.timers {
					wantTimers[to6(a)] = d
				}
				if got := g.srcTimers(group); !reflect.DeepEqual(got, wantTimers) {
					t.Errorf("source timers %v, want %v", got, wantTimers)
				}
				var wantQ []q
				for _, x := range c.queries {
					wantQ = append(wantQ, q{addrs(x.sources), x.s})
				}
				if got := g.specific(); fmt.Sprint(got) != fmt.Sprint(wantQ) {
					t.Errorf("queries %v, want %v", got, wantQ)
				}
				if s.LastReporter != reporter {
					t.Errorf("last reporter %v", s.LastReporter)
				}
			})
		}
	}
}

// §6.6.3.2: only sources with timers above LMQT are lowered and asked about.
func TestNoQueryNearExpiry(t *testing.T) {
	g := newRig(t, testConfig())
	g.at(10 * time.Second)
	g.v3(rec(AllowNewSources, grp, sa, sb))
	g.at(10*time.Second + gmi - time.Second) // a and b have 1 s left
	g.v3(rec(AllowNewSources, grp, sb))      // b back to GMI
	g.out()
	g.v3(rec(BlockOldSources, grp, sa, sb))
	if got := g.specific(); fmt.Sprint(got) != fmt.Sprint([]q{{set(sb), false}}) {
		t.Fatalf("queries %v, want Q(G,{b}) only", got)
	}
	if got := g.srcTimers(grp); got[sa] != time.Second || got[sb] != lmqt {
		t.Fatalf("timers %v", got)
	}
}

// Expiry: RFC 3376 §6.3 (source timers) and §6.5 (group timer), and the
// events each change produces.
func TestExpiry(t *testing.T) {
	for _, c := range []struct {
		name   string
		script func(g *rig)
		events []string
	}{
		{"INCLUDE sources expire one by one", func(g *rig) {
			g.at(10 * time.Second)
			g.v3(rec(AllowNewSources, grp, sa, sb))
			g.at(50 * time.Second)
			g.v3(rec(AllowNewSources, grp, sb))
		}, []string{"10s 239.1.1.1 INCLUDE{10.9.0.1,10.9.0.2}", "270s 239.1.1.1 INCLUDE{10.9.0.2}", "310s 239.1.1.1 INCLUDE{}"}},
		{"EXCLUDE: X source joins Y, then the group times out", func(g *rig) {
			g.at(10 * time.Second)
			g.v3(rec(ModeIsExclude, grp, sb), rec(AllowNewSources, grp, sa))
			g.at(50 * time.Second)
			g.v3(rec(ModeIsExclude, grp, sa, sb))
		}, []string{"10s 239.1.1.1 EXCLUDE{10.9.0.2}", "270s 239.1.1.1 EXCLUDE{10.9.0.1,10.9.0.2}", "310s 239.1.1.1 INCLUDE{}"}},
		{"EXCLUDE falls back to INCLUDE(X)", func(g *rig) {
			g.at(10 * time.Second)
			g.v3(rec(ModeIsExclude, grp, sb))
			g.at(50 * time.Second)
			g.v3(rec(AllowNewSources, grp, sa))
		}, []string{"10s 239.1.1.1 EXCLUDE{10.9.0.2}", "270s 239.1.1.1 INCLUDE{10.9.0.1}", "310s 239.1.1.1 INCLUDE{}"}},
		{"repeated reports change nothing", func(g *rig) {
			for i := range 5 {
				g.at(time.Duration(10+i) * time.Second)
				g.v3(rec(ModeIsExclude, grp))
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "274s 239.1.1.1 INCLUDE{}"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, testConfig())
			c.script(g)
			g.runUntil(400 * time.Second)
			got := g.events
			if fmt.Sprint(got) != fmt.Sprint(c.events) {
				t.Errorf("events\n%v\nwant\n%v", got, c.events)
			}
			if len(g.r.Groups(g.now)) != 0 {
				t.Errorf("groups left: %+v", g.r.Groups(g.now))
			}
		})
	}
}
