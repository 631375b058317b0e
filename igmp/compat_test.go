package igmp

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// RFC 3376 §7.3.2 and RFC 3810 §8.3.2: older hosts put a group in
// compatibility mode for the Older Host Present Interval (= GMI); their
// reports count as IS_EX({}); BLOCK is ignored and TO_EX loses its
// sources; in IGMPv1 mode leaves are ignored too.
func TestHostCompatibility(t *testing.T) {
	type step struct {
		at   time.Duration
		do   func(g *rig)
		want string // "compat filter queries" after the step
	}
	v1report := func(g *rig) { g.send(h2, grp, &Message{Type: TypeIGMPv1Report, Version: 1, Group: grp}) }
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"IGMPv2 host", []step{
			{10 * time.Second, func(g *rig) { g.send(h2, grp, v2report(grp)) }, "2 EXCLUDE{} 0"},
			{11 * time.Second, func(g *rig) { g.v3(rec(BlockOldSources, grp, sa)) }, "2 EXCLUDE{} 0"},
			{12 * time.Second, func(g *rig) { g.v3(rec(ChangeToExcludeMode, grp, sa)) }, "2 EXCLUDE{} 0"},
			{265 * time.Second, func(g *rig) { g.v3(rec(ModeIsExclude, grp)) }, "2 EXCLUDE{} 0"},
			// 270 s: the v2 host present timer ran out; back to v3.
			// TO_EX(a) now asks whether anyone still wants a: Q(G,{a}).
			{270 * time.Second, func(g *rig) { g.v3(rec(ChangeToExcludeMode, grp, sa)) }, "3 EXCLUDE{} 1"},
			{272 * time.Second, func(g *rig) {}, "3 EXCLUDE{10.9.0.1} 0"},
		}},
		{"IGMPv1 host: leaves ignored", []step{
			{10 * time.Second, v1report, "1 EXCLUDE{} 0"},
			{11 * time.Second, func(g *rig) { g.send(h1, ip("224.0.0.2"), v2leave(grp)) }, "1 EXCLUDE{} 0"},
			{12 * time.Second, func(g *rig) { g.send(h1, grp, v2report(grp)) }, "1 EXCLUDE{} 0"},
			// 270 s: v1 host present timer out, v2 still running (12+260).
			{270 * time.Second, func(g *rig) { g.send(h1, ip("224.0.0.2"), v2leave(grp)) }, "2 EXCLUDE{} 1"},
		}},
		{"MLDv1 host", []step{
			{10 * time.Second, func(g *rig) { g.send(h1LL, grp6, &Message{Type: TypeMLDv1Report, Version: 1, Group: grp6}) }, "1 EXCLUDE{} 0"},
			{11 * time.Second, func(g *rig) { g.v3(rec(BlockOldSources, grp6, ip("2001:db8::1"))) }, "1 EXCLUDE{} 0"},
			{12 * time.Second, func(g *rig) { g.send(h1LL, ip("ff02::2"), &Message{Type: TypeMLDDone, Version: 1, Group: grp6}) }, "1 EXCLUDE{} 1"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, testConfig())
			for _, s := range c.steps {
				g.runUntil(s.at)
				g.out()
				s.do(g)
				group := grp
				if c.name == "MLDv1 host" {
					group = grp6
				}
				st := g.state(group)
				if got := fmt.Sprintf("%d %v %d", st.Compat, st.Filter, len(g.specific())); got != s.want {
					t.Fatalf("at %v: %s, want %s", s.at, got, s.want)
				}
			}
		})
	}
}

// IGMPv1 hosts take up to 10 s to answer whatever the query says (RFC 2236
// §4), so their group membership interval uses 10 s as the response time.
func TestV1HostTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.QueryResponseInterval = 2 * time.Second
	g := newRig(t, cfg)
	g.at(10 * time.Second)
	g.send(h1, grp, v2report(grp))
	if s := g.state(grp); s.GroupTimer != 252*time.Second {
		t.Fatalf("v2 GMI %v", s.GroupTimer)
	}
	g.send(h2, grp, &Message{Type: TypeIGMPv1Report, Version: 1, Group: grp})
	if s := g.state(grp); s.GroupTimer != 260*time.Second || s.Compat != 1 {
		t.Fatalf("v1 GMI %v compat %d", s.GroupTimer, s.Compat)
	}
}

// An IGMPv2 (or MLDv1) querier cannot ask about sources: IGMPv3 reports
// count as the v2 message such a host would send.
func TestV2QuerierTranslatesV3Reports(t *testing.T) {
	for _, c := range []struct {
		name    string
		recs    []Record
		filter  filter.Filter
		queries int
	}{
		{"IS_IN(S) is a join", []Record{rec(ModeIsInclude, grp, sa)}, excl(), 0},
		{"ALLOW(S) is a join", []Record{rec(AllowNewSources, grp, sa)}, excl(), 0},
		{"TO_EX(S) is a join", []Record{rec(ChangeToExcludeMode, grp, sa)}, excl(), 0},
		{"IS_IN({}) says nothing", []Record{rec(ModeIsInclude, grp)}, incl(), 0},
		{"BLOCK says nothing", []Record{rec(ModeIsExclude, grp), rec(BlockOldSources, grp, sa)}, excl(), 0},
		{"TO_IN({}) is a leave", []Record{rec(ModeIsExclude, grp), rec(ChangeToIncludeMode, grp)}, excl(), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Version = 2
			g := newRig(t, cfg)
			g.at(10 * time.Second)
			g.v3(c.recs...)
			s := g.state(grp)
			if !s.Filter.Equal(c.filter) || len(s.Sources) != 0 {
				t.Errorf("state %+v, want %v", s, c.filter)
			}
			if n := len(g.specific()); n != c.queries {
				t.Errorf("%d queries, want %d", n, c.queries)
			}
		})
	}
}

// An IGMPv1 querier sends v1 queries and ignores leaves of every kind.
func TestV1Querier(t *testing.T) {
	cfg := testConfig()
	cfg.Version = 1
	g := newRig(t, cfg)
	g.at(10 * time.Second)
	g.send(h1, grp, v2report(grp))
	g.send(h1, ip("224.0.0.2"), v2leave(grp))
	g.v3(rec(ChangeToIncludeMode, grp))
	if n := len(g.specific()); n != 0 || !g.state(grp).Filter.Equal(excl()) || g.state(grp).GroupTimer != 260*time.Second {
		t.Fatalf("v1 querier: %d queries, state %+v", n, g.state(grp))
	}
	if q := g.r.Queriers(g.now)[0]; q.Version != 1 {
		t.Fatalf("%+v", q)
	}
}
