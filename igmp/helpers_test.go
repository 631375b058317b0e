package igmp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// Test fixtures: one router, two hosts, one group with three sources.
var (
	t0        = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	routerMAC = net.HardwareAddr{0x02, 0x1b, 0, 0, 0, 1}
	hostMAC   = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 2}
	routerIP  = ip("10.0.0.254")
	routerLL  = ip("fe80::254")
	h1, h2    = ip("10.0.0.1"), ip("10.0.0.2")
	h1LL      = ip("fe80::1")
	grp       = ip("239.1.1.1")
	grp6      = ip("ff15::1")
	sa, sb    = ip("10.9.0.1"), ip("10.9.0.2")
	sc        = ip("10.9.0.3")
	igmpv3Dst = ip("224.0.0.22")
	mldv2Dst  = ip("ff02::16")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// testConfig is the RFC default configuration: robustness 2, QI 125 s,
// QRI 10 s, LMQI 1 s. So GMI = 260 s, OQPI = 255 s, LMQT = 2 s.
func testConfig() Config {
	return Config{Version: 3, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second,
		LastMemberQueryInterval: time.Second, Robustness: 2, IPv4: routerIP, IPv6: routerLL, MAC: routerMAC}
}

const (
	gmi  = 260 * time.Second
	lmqt = 2 * time.Second
)

// rig drives a Router on a fake clock.
type rig struct {
	t   *testing.T
	r   *Router
	cfg Config
	now time.Time
	// events collects every event as "<seconds since t0>s <group> <filter>".
	events []string
}

func (g *rig) collect() {
	for _, e := range g.r.TakeEvents() {
		g.events = append(g.events, fmt.Sprintf("%gs %v %v", g.now.Sub(t0).Seconds(), e.Group, e.Filter))
	}
}

// runUntil fires every timer up to t0+d, one deadline at a time.
func (g *rig) runUntil(d time.Duration) {
	for n := g.r.Next(); !n.IsZero() && !n.After(t0.Add(d)); n = g.r.Next() {
		g.at(n.Sub(t0))
	}
	g.at(d)
}

// newRig starts a router at t0 and throws away its first startup queries.
func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r, err := New(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	g := &rig{t: t, r: r, cfg: cfg, now: t0}
	g.r.Advance(t0)
	g.r.TakeOutput()
	return g
}

// at moves the clock to t0+d and fires what is due.
func (g *rig) at(d time.Duration) {
	g.now = t0.Add(d)
	g.r.Advance(g.now)
	g.collect()
}

// in feeds a frame at the current time and fails the test on error.
func (g *rig) in(frame []byte) {
	g.t.Helper()
	if err := g.r.Input(g.now, frame); err != nil {
		g.t.Fatalf("Input: %v", err)
	}
	g.collect()
}

// send builds m from src to dst as a host would and feeds it.
func (g *rig) send(src, dst netip.Addr, m *Message) {
	g.t.Helper()
	g.in(frame(g.t, hostMAC, src, dst, m))
}

func frame(t testing.TB, mac net.HardwareAddr, src, dst netip.Addr, m *Message) []byte {
	t.Helper()
	f, err := m.Frame(mac, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func rec(typ RecordType, group netip.Addr, srcs ...netip.Addr) Record {
	return Record{Type: typ, Group: group, Sources: srcs}
}

// v3 sends an IGMPv3 report from h1 (or MLDv2 from h1LL for IPv6 groups).
func (g *rig) v3(recs ...Record) {
	g.t.Helper()
	if recs[0].Group.Is6() {
		g.send(h1LL, mldv2Dst, &Message{Type: TypeMLDv2Report, Version: 2, Records: recs})
		return
	}
	g.send(h1, igmpv3Dst, &Message{Type: TypeIGMPv3Report, Version: 3, Records: recs})
}

// sent is one query the router put out, decoded.
type sent struct {
	dst netip.Addr
	m   *Message
}

// out decodes the router's output, checking what every query must be:
// from our MAC and address, TTL/hop limit 1, Router Alert, valid checksums.
func (g *rig) out() []sent {
	g.t.Helper()
	var out []sent
	for _, f := range g.r.TakeOutput() {
		p, err := parseFrame(f)
		if err != nil {
			g.t.Fatalf("our own frame: %v", err)
		}
		var m *Message
		if p.src.Is6() {
			m, err = ParseMLDPacket(p.src, p.dst, p.payload)
		} else {
			m, err = ParseIGMP(p.payload)
		}
		if err != nil {
			g.t.Fatalf("our own query: %v", err)
		}
		want := g.cfg.IPv4
		if !want.IsValid() {
			want = netip.IPv4Unspecified()
		}
		if p.src.Is6() {
			want = g.cfg.IPv6
		}
		if p.hops != 1 || !p.alert || net.HardwareAddr(p.srcMAC[:]).String() != routerMAC.String() || p.src != want {
			g.t.Fatalf("query %v: hops %d alert %v from %v %v", m, p.hops, p.alert, net.HardwareAddr(p.srcMAC[:]), p.src)
		}
		out = append(out, sent{p.dst, m})
	}
	return out
}

// state returns the group's state now, or a zero GroupState if unknown.
func (g *rig) state(group netip.Addr) GroupState {
	for _, s := range g.r.Groups(g.now) {
		if s.Group == group {
			return s
		}
	}
	return GroupState{}
}

// srcTimers lists the group's sources as "addr=timer" for compact checks.
func (g *rig) srcTimers(group netip.Addr) map[netip.Addr]time.Duration {
	m := map[netip.Addr]time.Duration{}
	for _, s := range g.state(group).Sources {
		m[s.Addr] = s.Timer
	}
	return m
}

func set(a ...netip.Addr) []netip.Addr {
	if len(a) == 0 {
		return nil
	}
	s := slices.Clone(a)
	slices.SortFunc(s, netip.Addr.Compare)
	return s
}

func incl(a ...netip.Addr) filter.Filter {
	return filter.Filter{Mode: filter.Include, Sources: set(a...)}
}
func excl(a ...netip.Addr) filter.Filter {
	return filter.Filter{Mode: filter.Exclude, Sources: set(a...)}
}
