package igmp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// timeline runs the router to 30 s and lists every specific query as
// "<seconds> Q(G,...)" plus the events, for scripts that start at 10 s.
func (g *rig) timeline(until time.Duration, script map[time.Duration]func()) []string {
	var out []string
	var steps []time.Duration
	for d := range script {
		steps = append(steps, d)
	}
	slices.Sort(steps)
	log := func() {
		for _, x := range g.specific() {
			out = append(out, fmt.Sprintf("%gs %v", g.now.Sub(t0).Seconds(), x))
		}
		out = append(out, g.events...)
		g.events = nil
	}
	for _, d := range steps {
		g.runUntil(d)
		log()
		script[d]()
		log()
	}
	for n := g.r.Next(); !n.IsZero() && !n.After(t0.Add(until)); n = g.r.Next() {
		g.at(n.Sub(t0))
		log()
	}
	return out
}

func v2report(group netip.Addr) *Message {
	return &Message{Type: TypeIGMPv2Report, Version: 2, Group: group}
}

func v2leave(group netip.Addr) *Message {
	return &Message{Type: TypeIGMPLeave, Version: 2, Group: group}
}

// RFC 3376 §6.6.3 (and RFC 2236 §3 for the IGMPv2 querier): after a leave,
// [Last Member Query Count] = robustness group-specific queries go out,
// [Last Member Query Interval] apart, and the group times out LMQT after
// the leave unless someone answers.
func TestLastMemberQueries(t *testing.T) {
	for _, c := range []struct {
		name    string
		version int
		rv      int
		script  func(g *rig) map[time.Duration]func()
		want    []string
	}{
		{"v2 leave, robustness 2", 3, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second: func() { g.send(h1, grp, v2report(grp)) },
				20 * time.Second: func() { g.send(h1, ip("224.0.0.2"), v2leave(grp)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "21s Q(G,[],S=false)", "22s 239.1.1.1 INCLUDE{}"}},
		{"v2 leave, robustness 3", 3, 3, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second: func() { g.send(h1, grp, v2report(grp)) },
				20 * time.Second: func() { g.send(h1, ip("224.0.0.2"), v2leave(grp)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "21s Q(G,[],S=false)", "22s Q(G,[],S=false)", "23s 239.1.1.1 INCLUDE{}"}},
		{"a report during the queries keeps the group; S set after it", 3, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second:         func() { g.send(h1, grp, v2report(grp)) },
				20 * time.Second:         func() { g.send(h1, ip("224.0.0.2"), v2leave(grp)) },
				20500 * time.Millisecond: func() { g.send(h2, grp, v2report(grp)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "21s Q(G,[],S=true)"}},
		{"IGMPv2 querier", 2, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second: func() { g.send(h1, grp, v2report(grp)) },
				20 * time.Second: func() { g.send(h1, ip("224.0.0.2"), v2leave(grp)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "21s Q(G,[],S=false)", "22s 239.1.1.1 INCLUDE{}"}},
		{"v3 TO_IN({}) from the last member", 3, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second: func() { g.v3(rec(ChangeToExcludeMode, grp)) },
				20 * time.Second: func() { g.v3(rec(ChangeToIncludeMode, grp)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "21s Q(G,[],S=false)", "22s 239.1.1.1 INCLUDE{}"}},
		{"BLOCK: Q(G,S) rounds, split by S after a source is re-reported", 3, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second:         func() { g.v3(rec(AllowNewSources, grp, sa, sb)) },
				20 * time.Second:         func() { g.v3(rec(BlockOldSources, grp, sa, sb)) },
				20500 * time.Millisecond: func() { g.v3(rec(AllowNewSources, grp, sa)) },
			}
		}, []string{"10s 239.1.1.1 INCLUDE{10.9.0.1,10.9.0.2}", "20s Q(G,[10.9.0.1 10.9.0.2],S=false)",
			"21s Q(G,[10.9.0.1],S=true)", "21s Q(G,[10.9.0.2],S=false)", "22s 239.1.1.1 INCLUDE{10.9.0.1}"}},
		{"Q(G,S) with S set is left out when Q(G) goes in the same round", 3, 2, func(g *rig) map[time.Duration]func() {
			return map[time.Duration]func(){
				10 * time.Second:         func() { g.v3(rec(ModeIsExclude, grp), rec(AllowNewSources, grp, sa)) },
				20 * time.Second:         func() { g.v3(rec(ChangeToIncludeMode, grp)) },
				20500 * time.Millisecond: func() { g.v3(rec(AllowNewSources, grp, sa)) },
			}
		}, []string{"10s 239.1.1.1 EXCLUDE{}", "20s Q(G,[],S=false)", "20s Q(G,[10.9.0.1],S=false)", "21s Q(G,[],S=false)",
			"22s 239.1.1.1 INCLUDE{10.9.0.1}"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Version, cfg.Robustness, cfg.DisableIPv6 = c.version, c.rv, true
			g := newRig(t, cfg)
			got := g.timeline(30*time.Second, c.script(g))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got\n%v\nwant\n%v", got, c.want)
			}
		})
	}
}

// The max resp of specific queries is the last member query interval, in
// the querier's version; an MLDv2 querier answers MLDv1 dones the same way.
func TestSpecificQueryFormat(t *testing.T) {
	for _, c := range []struct {
		version int
		v6      bool
	}{{3, false}, {2, false}, {3, true}, {2, true}} {
		cfg := testConfig()
		cfg.Version = c.version
		g := newRig(t, cfg)
		g.at(10 * time.Second)
		if c.v6 {
			g.send(h1LL, grp6, &Message{Type: TypeMLDv1Report, Version: 1, Group: grp6})
			g.send(h1LL, ip("ff02::2"), &Message{Type: TypeMLDDone, Version: 1, Group: grp6})
		} else {
			g.send(h1, grp, v2report(grp))
			g.send(h1, ip("224.0.0.2"), v2leave(grp))
		}
		out := g.out()
		if len(out) != 1 {
			t.Fatalf("v%d v6 %v: %v", c.version, c.v6, out)
		}
		m := out[0].m
		want := map[[2]int]int{{3, 0}: 3, {2, 0}: 2, {3, 1}: 2, {2, 1}: 1}[[2]int{c.version, b2i(c.v6)}]
		if m.Version != want || m.MaxResp() != time.Second || out[0].dst != m.Group {
			t.Errorf("v%d v6 %v: %v to %v", c.version, c.v6, m, out[0].dst)
		}
	}
}

// Only the querier sends specific queries (RFC 3376 §6.6.3); a non-querier
// lowers its timers when it hears the querier's queries with S clear
// (§6.6.1, RFC 2236 §6) and not when S is set.
func TestNonQuerier(t *testing.T) {
	lower := h1 // 10.0.0.1 < 10.0.0.254: h1 is the querier
	query := func(s bool, sources ...netip.Addr) *Message {
		return &Message{Type: TypeIGMPQuery, Version: 3, Group: grp, MaxRespCode: 10, QRV: 2, QQIC: 125, Suppress: s, Sources: sources}
	}
	for _, c := range []struct {
		name string
		m    *Message
		gt   time.Duration
		srcs map[netip.Addr]time.Duration
	}{
		{"Q(G) lowers the group timer", query(false), lmqt, map[netip.Addr]time.Duration{sa: gmi}},
		{"Q(G) with S set does not", query(true), gmi, map[netip.Addr]time.Duration{sa: gmi}},
		{"Q(G,S) lowers source timers", query(false, sa), gmi, map[netip.Addr]time.Duration{sa: lmqt}},
		{"v2 Q(G) lowers the group timer", &Message{Type: TypeIGMPQuery, Version: 2, Group: grp, MaxRespCode: 10}, lmqt, map[netip.Addr]time.Duration{sa: gmi}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DisableIPv6 = true
			g := newRig(t, cfg)
			g.at(10 * time.Second)
			g.send(lower, allSystems, &Message{Type: TypeIGMPQuery, Version: 3, Group: netip.IPv4Unspecified(), MaxRespCode: 100, QRV: 2, QQIC: 125})
			g.v3(rec(ModeIsExclude, grp), rec(AllowNewSources, grp, sa))
			g.v3(rec(ChangeToIncludeMode, grp)) // would make a querier ask
			if out := g.out(); len(out) != 0 {
				t.Fatalf("non-querier sent %v", out)
			}
			g.send(lower, grp, c.m)
			if s := g.state(grp); s.GroupTimer != c.gt || fmt.Sprint(g.srcTimers(grp)) != fmt.Sprint(c.srcs) {
				t.Errorf("GT %v sources %v, want %v %v", s.GroupTimer, g.srcTimers(grp), c.gt, c.srcs)
			}
		})
	}
}
