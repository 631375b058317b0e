package igmp

import (
	"net/netip"
	"testing"
	"time"
)

// RFC 3376 §8.6/§8.7: [robustness] startup queries, a quarter of the query
// interval apart; then one every query interval (§8.2), each with Max Resp
// = query response interval (§8.3), QRV and QQIC (§4.1.6, §4.1.7).
func TestStartupAndGeneralQueries(t *testing.T) {
	for _, c := range []struct {
		name    string
		rv      int
		version int
		at      []time.Duration // general queries expected in the first 400 s
	}{
		{"robustness 2", 2, 3, []time.Duration{0, 31250 * time.Millisecond, 156250 * time.Millisecond, 281250 * time.Millisecond}},
		{"robustness 3", 3, 3, []time.Duration{0, 31250 * time.Millisecond, 62500 * time.Millisecond, 187500 * time.Millisecond, 312500 * time.Millisecond}},
		{"robustness 1", 1, 3, []time.Duration{0, 125 * time.Second, 250 * time.Second, 375 * time.Second}},
		{"igmpv2", 2, 2, []time.Duration{0, 31250 * time.Millisecond, 156250 * time.Millisecond, 281250 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Robustness, cfg.Version = c.rv, c.version
			r, err := New(cfg, t0)
			if err != nil {
				t.Fatal(err)
			}
			g := &rig{t: t, r: r, cfg: cfg, now: t0}
			var got []time.Duration
			for n := r.Next(); !n.IsZero() && n.Sub(t0) < 400*time.Second; n = r.Next() {
				g.now = n
				r.Advance(n)
				for _, s := range g.out() {
					if s.dst.Is6() {
						continue
					}
					got = append(got, n.Sub(t0))
					checkGeneral(t, s, cfg)
				}
			}
			if len(got) != len(c.at) {
				t.Fatalf("queries at %v, want %v", got, c.at)
			}
			for i := range got {
				if got[i] != c.at[i] {
					t.Fatalf("queries at %v, want %v", got, c.at)
				}
			}
		})
	}
}

func checkGeneral(t *testing.T, s sent, cfg Config) {
	t.Helper()
	m := s.m
	if s.dst != allSystems || !m.Group.IsUnspecified() || m.Version != cfg.Version || len(m.Sources) > 0 || m.Suppress {
		t.Fatalf("general query %v to %v", m, s.dst)
	}
	if m.MaxResp() != cfg.QueryResponseInterval {
		t.Fatalf("max resp %v", m.MaxResp())
	}
	if cfg.Version == 3 && (int(m.QRV) != cfg.Robustness || m.QQI() != cfg.QueryInterval) {
		t.Fatalf("QRV %d QQI %v", m.QRV, m.QQI())
	}
}

// MLD follows the IGMP version: v3 → MLDv2, v2 and v1 → MLDv1; queries go
// from the link-local address to ff02::1; no IPv6 source, no MLD querier.
func TestMLDQueries(t *testing.T) {
	for _, c := range []struct {
		version, mld int
		maxResp      uint16
	}{{3, 2, 10000}, {2, 1, 10000}, {1, 1, 10000}} {
		cfg := testConfig()
		cfg.Version = c.version
		r, _ := New(cfg, t0)
		g := &rig{t: t, r: r, cfg: cfg, now: t0}
		r.Advance(t0)
		var n int
		for _, s := range g.out() {
			if s.dst.Is4() {
				if c.version == 1 && s.m.Version != 1 && s.m.MaxRespCode != 0 {
					t.Errorf("IGMPv1 query %v", s.m)
				}
				continue
			}
			n++
			if s.dst != allNodes || s.m.Version != c.mld || s.m.MaxRespCode != c.maxResp || !s.m.Group.IsUnspecified() {
				t.Errorf("version %d: MLD query %v to %v", c.version, s.m, s.dst)
			}
		}
		if n != 1 {
			t.Errorf("version %d: %d MLD queries", c.version, n)
		}
	}
	cfg := testConfig()
	cfg.IPv6 = netip.Addr{}
	r, _ := New(cfg, t0)
	r.Advance(t0)
	if out := r.TakeOutput(); len(out) != 1 {
		t.Errorf("without IPv6 source: %d queries, want the IGMP one", len(out))
	}
	if q := r.Queriers(t0); len(q) != 2 || q[1].Querier || q[0].StartupQueriesLeft != 1 {
		t.Errorf("queriers %+v", q)
	}
}

// query is a general query from another router.
func otherQuery(t *testing.T, src netip.Addr, version int) []byte {
	m := &Message{Type: TypeIGMPQuery, Version: version, Group: netip.IPv4Unspecified(), MaxRespCode: 100, QRV: 2, QQIC: 125}
	dst := allSystems
	if src.Is6() {
		m = &Message{Type: TypeMLDQuery, Version: 2, Group: netip.IPv6Unspecified(), MaxRespCode: 10000, QRV: 2, QQIC: 125}
		dst = allNodes
	}
	return frame(t, hostMAC, src, dst, m)
}

// RFC 3376 §6.6.2, RFC 3810 §7.6.2: the lowest address is the querier; a
// router that hears a lower one stops querying for the Other Querier
// Present Interval (robustness × QI + QRI/2 = 255 s), then takes over.
func TestQuerierElection(t *testing.T) {
	const oqpi = 255 * time.Second
	for _, c := range []struct {
		name   string
		self   netip.Addr
		other  netip.Addr
		defers bool
	}{
		{"lower address wins", routerIP, ip("10.0.0.1"), true},
		{"higher address loses", routerIP, ip("10.0.0.255"), false},
		{"0.0.0.0 never outranks an address", routerIP, ip("0.0.0.0"), false},
		{"unset address defers to a higher one", netip.Addr{}, ip("10.0.0.255"), true},
		{"unset address defers to 0.0.0.0", netip.Addr{}, ip("0.0.0.0"), true},
		{"MLD lower link-local wins", routerLL, ip("fe80::1"), true},
		{"MLD higher link-local loses", routerLL, ip("fe80::ffff"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.other.Is4() {
				cfg.IPv4, cfg.DisableIPv6 = c.self, true
			} else {
				cfg.IPv6, cfg.DisableIPv4 = c.self, true
			}
			g := newRig(t, cfg)
			g.at(10 * time.Second)
			g.in(otherQuery(t, c.other, 3))
			q := g.r.Queriers(g.now)[0]
			if q.Querier == c.defers || (q.OtherQuerier == c.other) != c.defers {
				t.Fatalf("after query from %v: %+v", c.other, q)
			}
			if !c.defers {
				// Still the querier: the startup query at 31.25 s goes out.
				g.at(31250 * time.Millisecond)
				if n := len(g.out()); n != 1 {
					t.Fatalf("%d queries at 31.25 s", n)
				}
				return
			}
			if q.OtherQuerierPresent != oqpi || q.NextQuery != 0 || q.StartupQueriesLeft != 0 {
				t.Fatalf("deferring: %+v", q)
			}
			// Silent until the timer runs out, even past our startup queries.
			g.at(10*time.Second + oqpi - time.Millisecond)
			if out := g.out(); len(out) != 0 {
				t.Fatalf("non-querier sent %v", out)
			}
			// Hearing it again restarts the timer.
			g.in(otherQuery(t, c.other, 3))
			g.at(10*time.Second + 2*oqpi - 2*time.Millisecond)
			if out := g.out(); len(out) != 0 {
				t.Fatalf("non-querier sent %v", out)
			}
			g.at(10*time.Second + 2*oqpi - time.Millisecond)
			out := g.out()
			if len(out) != 1 || !out[0].m.Group.IsUnspecified() {
				t.Fatalf("on expiry: %v, want one general query", out)
			}
			q = g.r.Queriers(g.now)[0]
			if !q.Querier || q.OtherQuerier.IsValid() || q.NextQuery != 125*time.Second {
				t.Fatalf("after taking over: %+v", q)
			}
		})
	}
}

// RFC 3376 §4.1.6/§4.1.7: a non-querier adopts the querier's QRV and QQI,
// so its other-querier-present and membership timeouts match the querier's.
func TestNonQuerierAdoptsQRVAndQQI(t *testing.T) {
	g := newRig(t, testConfig())
	m := &Message{Type: TypeIGMPQuery, Version: 3, Group: netip.IPv4Unspecified(), MaxRespCode: 100, QRV: 3, QQIC: 60}
	g.in(frame(t, hostMAC, h1, allSystems, m))
	if q := g.r.Queriers(g.now)[0]; q.OtherQuerierPresent != 3*60*time.Second+5*time.Second {
		t.Fatalf("OQPI with QRV 3, QQI 60 s: %v", q.OtherQuerierPresent)
	}
	g.v3(rec(ModeIsExclude, grp))
	if s := g.state(grp); s.GroupTimer != 3*60*time.Second+10*time.Second {
		t.Fatalf("GMI with QRV 3, QQI 60 s: %v", s.GroupTimer)
	}
	// QRV 0 and QQIC 0 mean "use your own".
	m.QRV, m.QQIC = 0, 0
	g.in(frame(t, hostMAC, h1, allSystems, m))
	if q := g.r.Queriers(g.now)[0]; q.OtherQuerierPresent != 255*time.Second {
		t.Fatalf("OQPI after QRV 0: %v", q.OtherQuerierPresent)
	}
}

// Our own queries, read back (a bridge in switch mode loops them), are not
// another querier and not membership.
func TestOwnFramesIgnored(t *testing.T) {
	cfg := testConfig()
	r, _ := New(cfg, t0)
	r.Advance(t0)
	for _, f := range r.TakeOutput() {
		if err := r.Input(t0, f); err != nil {
			t.Fatal(err)
		}
	}
	// Another MAC with our address is taken for us too (an address clash
	// must not make us defer to ourselves).
	if err := r.Input(t0, frame(t, hostMAC, routerIP, allSystems, &Message{Type: TypeIGMPQuery, Version: 2, Group: netip.IPv4Unspecified(), MaxRespCode: 100})); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if q := r.Queriers(t0); !q[0].Querier || !q[1].Querier || st.IGMP.Own != 2 || st.MLD.Own != 1 || len(r.Groups(t0)) != 0 {
		t.Fatalf("after own queries: %+v, stats %+v", q, st)
	}
}

// A late Advance sends one general query, not one per missed interval.
func TestLateAdvance(t *testing.T) {
	cfg := testConfig()
	cfg.DisableIPv6 = true
	g := newRig(t, cfg)
	g.at(time.Hour)
	if n := len(g.out()); n != 1 {
		t.Fatalf("%d queries after an hour's sleep", n)
	}
	if q := g.r.Queriers(g.now)[0]; q.NextQuery != 125*time.Second {
		t.Fatalf("next query in %v", q.NextQuery)
	}
}

// The other querier's version is the one its queries have, not ours: a
// v3 router that defers to a v2 querier shows v2, and a v1 one v1.
func TestOtherQuerierVersion(t *testing.T) {
	for _, v := range []int{1, 2, 3} {
		cfg := testConfig()
		cfg.IPv4, cfg.DisableIPv6 = routerIP, true
		g := newRig(t, cfg)
		g.at(10 * time.Second)
		g.in(otherQuery(t, ip("10.0.0.1"), v))
		if q := g.r.Queriers(g.now)[0]; q.OtherVersion != v || q.Version != 3 {
			t.Errorf("after a v%d query: other querier v%d, ours v%d", v, q.OtherVersion, q.Version)
		}
	}
}
