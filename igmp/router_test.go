package igmp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

func TestConfigValidation(t *testing.T) {
	r, err := New(Config{MAC: routerMAC}, t0)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if q := r.Queriers(t0); len(q) != 2 || q[0].Version != 3 || q[1].Version != 2 || q[1].Querier || q[0].StartupQueriesLeft != 2 {
		t.Fatalf("defaults: %+v", q)
	}
	for _, c := range []struct {
		name string
		mod  func(*Config)
	}{
		{"version 4", func(c *Config) { c.Version = 4 }},
		{"negative robustness", func(c *Config) { c.Robustness = -1 }},
		{"query interval beyond QQIC", func(c *Config) { c.QueryInterval = 31745 * time.Second }},
		{"QRI not below QI", func(c *Config) { c.QueryResponseInterval = 125 * time.Second }},
		{"QRI below 1/10 s", func(c *Config) { c.QueryResponseInterval = 50 * time.Millisecond }},
		{"LMQI below 1/10 s", func(c *Config) { c.LastMemberQueryInterval = 99 * time.Millisecond }},
		{"multicast IPv4", func(c *Config) { c.IPv4 = grp }},
		{"IPv6 as IPv4", func(c *Config) { c.IPv4 = routerLL }},
		{"global IPv6", func(c *Config) { c.IPv6 = ip("fd77::1") }},
		{"no MAC", func(c *Config) { c.MAC = nil }},
		{"multicast MAC", func(c *Config) { c.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }},
		{"nothing enabled", func(c *Config) { c.DisableIPv4, c.DisableIPv6 = true, true }},
	} {
		cfg := testConfig()
		c.mod(&cfg)
		if _, err := New(cfg, t0); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// Response intervals beyond a version's largest code go out as that code.
func TestLongResponseIntervalsClamp(t *testing.T) {
	cfg := testConfig()
	cfg.Version, cfg.QueryResponseInterval = 2, 100*time.Second
	g := newRig(t, cfg)
	g.at(31250 * time.Millisecond)
	for _, s := range g.out() {
		if s.m.MaxRespCode != map[bool]uint16{false: 255, true: 65535}[s.dst.Is6()] {
			t.Errorf("%v", s.m)
		}
	}
	if s := g.r.Queriers(g.now); s[0].Version != 2 {
		t.Fatal(s)
	}
}

// TestInputErrors: bad frames are errors of the right kind, counted, and
// change nothing.
func TestInputErrors(t *testing.T) {
	report := &Message{Type: TypeIGMPv3Report, Version: 3, Records: []Record{rec(ModeIsExclude, grp)}}
	good := frame(t, hostMAC, h1, igmpv3Dst, report)
	mld := frame(t, hostMAC, h1LL, mldv2Dst, &Message{Type: TypeMLDv2Report, Version: 2, Records: []Record{rec(ModeIsExclude, grp6)}})
	edit := func(f []byte, fn func(b []byte)) []byte {
		b := append([]byte(nil), f...)
		fn(b)
		return b
	}
	fixIPv4 := func(b []byte) { // recompute the IPv4 header checksum
		ip := b[14:38]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], fold(sum(0, ip)))
	}
	for _, c := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short frame", good[:10], ErrTruncated},
		{"ARP", edit(good, func(b []byte) { b[12], b[13] = 0x08, 0x06 }), ErrNotIGMP},
		{"UDP", edit(good, func(b []byte) { b[14+9] = 17; fixIPv4(b) }), ErrNotIGMP},
		{"IPv4 header checksum", edit(good, func(b []byte) { b[14+10]++ }), ErrChecksum},
		{"IPv4 total length past end", edit(good, func(b []byte) { b[14+2] = 0xff; fixIPv4(b) }), ErrTruncated},
		{"IPv4 bad option", edit(good, func(b []byte) { b[14+21] = 9; fixIPv4(b) }), ErrMalformed},
		{"fragment", edit(good, func(b []byte) { b[14+6] = 0x20; fixIPv4(b) }), ErrMalformed},
		{"IGMP checksum", edit(good, func(b []byte) { b[len(b)-1]++ }), ErrChecksum},
		{"TTL 2", edit(good, func(b []byte) { b[14+8] = 2; fixIPv4(b) }), ErrNotLocal},
		{"MLD hop limit 255", edit(mld, func(b []byte) { b[14+7] = 255 }), ErrNotLocal},
		{"MLD without Router Alert", edit(mld, func(b []byte) { b[14+42] = 1 }), ErrNotLocal}, // RA → PadN
		{"MLD checksum", edit(mld, func(b []byte) { b[len(b)-1]++ }), ErrChecksum},
		{"MLD fragment", edit(mld, func(b []byte) { b[14+40] = protoFragment }), ErrMalformed},
		{"NDP", edit(mld, func(b []byte) { b[14+48] = 135 }), ErrNotIGMP},
		{"MLD query from a global address", frame(t, hostMAC, ip("fd77::2"), allNodes,
			&Message{Type: TypeMLDQuery, Version: 2, Group: netip.IPv6Unspecified()}), ErrNotLocal},
		{"MLD report from a global address", frame(t, hostMAC, ip("fd77::2"), mldv2Dst,
			&Message{Type: TypeMLDv2Report, Version: 2, Records: []Record{rec(ModeIsExclude, grp6)}}), ErrNotLocal},
		{"unknown IGMP type", frame(t, hostMAC, h1, grp, &Message{Type: TypeIGMPv2Report, Version: 2, Group: grp}), nil}, // patched below
	} {
		r, _ := New(testConfig(), t0)
		f := c.frame
		if c.name == "unknown IGMP type" {
			f = edit(f, func(b []byte) {
				b[38] = 0x13
				b[40], b[41] = 0, 0
				binary.BigEndian.PutUint16(b[40:], fold(sum(0, b[38:46])))
			})
			c.want = ErrUnknownType
		}
		err := r.Input(t0, f)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if len(r.Groups(t0)) != 0 || len(r.TakeEvents()) != 0 {
			t.Errorf("%s: changed the state", c.name)
		}
		var st ErrorStats
		st.count(c.want)
		if r.Stats().Errors != st {
			t.Errorf("%s: error stats %+v", c.name, r.Stats().Errors)
		}
	}
}

// Frames the data path hands over as they come: VLAN-tagged, padded to
// the Ethernet minimum, MLD reports from :: (RFC 3810 §5.2.13, sent while
// the host's link-local address is tentative).
func TestInputAccepts(t *testing.T) {
	report := frame(t, hostMAC, h1, grp, v2report(grp))
	tagged := append(append(append([]byte(nil), report[:12]...), 0x81, 0x00, 0x00, 0x07), report[12:]...)
	padded := append(append([]byte(nil), frame(t, hostMAC, h1, grp, v2report(ip("239.2.2.2")))...), make([]byte, 20)...)
	unspec := frame(t, hostMAC, netip.IPv6Unspecified(), mldv2Dst, &Message{Type: TypeMLDv2Report, Version: 2, Records: []Record{rec(ModeIsExclude, grp6)}})
	r, _ := New(testConfig(), t0)
	for _, f := range [][]byte{tagged, padded, unspec} {
		if err := r.Input(t0, f); err != nil {
			t.Fatal(err)
		}
	}
	ev := r.TakeEvents()
	if len(ev) != 3 || ev[0].Group != grp || ev[1].Group != ip("239.2.2.2") || ev[2].Group != grp6 || !ev[2].Filter.Equal(excl()) {
		t.Fatalf("events %+v", ev)
	}
	if r.Filter(grp).Mode != filter.Exclude || !r.Filter(ip("239.9.9.9")).Empty() {
		t.Fatal("Filter")
	}
	st := r.Stats()
	if st.IGMP.Received.Reports[2] != 2 || st.MLD.Received.Reports[2] != 1 || st.MLD.Received.Records != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Groups every host is in, and IPv6 scopes that never leave a host, are
// not membership.
func TestIgnoredGroups(t *testing.T) {
	g := newRig(t, testConfig())
	g.send(h1, allSystems, v2report(allSystems))
	g.v3(rec(ModeIsExclude, allSystems))
	g.v3(rec(ModeIsExclude, allNodes), rec(ModeIsExclude, ip("ff01::1:2")), rec(ModeIsExclude, ip("ff00::5")))
	if len(g.r.Groups(g.now)) != 0 || len(g.events) != 0 {
		t.Fatalf("groups %+v", g.r.Groups(g.now))
	}
}

func TestDisabledFamily(t *testing.T) {
	cfg := testConfig()
	cfg.DisableIPv6 = true
	g := newRig(t, cfg)
	g.v3(rec(ModeIsExclude, grp6))
	if len(g.r.Groups(g.now)) != 0 || len(g.r.Queriers(g.now)) != 1 || !g.r.Filter(grp6).Empty() {
		t.Fatal("disabled MLD tracked a group")
	}
}

func TestLimits(t *testing.T) {
	g := newRig(t, testConfig())
	many := make([]netip.Addr, maxSources+1)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
	}
	err := g.r.Input(g.now, frame(t, hostMAC, h1, igmpv3Dst, &Message{Type: TypeIGMPv3Report, Version: 3,
		Records: []Record{rec(AllowNewSources, grp, many...), rec(ModeIsExclude, ip("239.3.3.3"))}}))
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("too many sources: %v", err)
	}
	// The other record of the report still counts; the refused group is gone.
	if gs := g.r.Groups(g.now); len(gs) != 1 || gs[0].Group != ip("239.3.3.3") {
		t.Fatalf("groups %+v", gs)
	}
	for i := range maxGroups {
		g.r.Input(g.now, frame(t, hostMAC, h1, grp, v2report(netip.AddrFrom4([4]byte{239, 4, byte(i >> 8), byte(i)}))))
	}
	if n := len(g.r.Groups(g.now)); n != maxGroups || g.r.Stats().Errors.Limit != 2 {
		t.Fatalf("%d groups, stats %+v", n, g.r.Stats().Errors)
	}
}

func TestFilter(t *testing.T) {
	for _, c := range []struct {
		f      filter.Filter
		src    netip.Addr
		allows bool
	}{
		{incl(), sa, false},
		{incl(sa, sb), sb, true},
		{incl(sa, sb), sc, false},
		{excl(), sa, true},
		{excl(sa), sa, false},
		{excl(sa), sb, true},
	} {
		if c.f.Allows(c.src) != c.allows {
			t.Errorf("%v.Allows(%v) = %v", c.f, c.src, !c.allows)
		}
	}
	if !incl().Equal(filter.Filter{}) || incl(sa).Equal(excl(sa)) || incl(sa).Equal(incl(sb)) || !excl(sa, sb).Equal(excl(sa, sb)) {
		t.Error("Equal")
	}
	if s := excl(sa, sb).String(); s != "EXCLUDE{10.9.0.1,10.9.0.2}" {
		t.Error(s)
	}
}
