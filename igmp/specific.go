package igmp

// Group-specific and group-and-source-specific queries, and the queries'
// wire form. RFC 3376 §6.6.3, RFC 3810 §7.6.3:
//
//	Send Q(G):   lower the group timer to LMQT, then send [Last Member
//	             Query Count] queries, [Last Member Query Interval] apart.
//	Send Q(G,X): for each source of X whose timer is above LMQT, lower it
//	             to LMQT and give it [LMQC] transmissions; send now, then
//	             every LMQI while any source has transmissions left.
//
// Each round sends up to three queries for the group: Q(G), with S set if
// the group timer is still above LMQT (a report raised it since); Q(G,S)
// with S set for sources whose timers are above LMQT (omitted when Q(G)
// went out in the same round, as §6.6.3.2 allows); Q(G,S) with S clear for
// the others. S tells other routers not to lower their timers (§6.6.1).

import (
	"net/netip"
	"slices"
	"time"
)

// Sources per query, so that a query fits the minimum MTU of the family
// (576 bytes for IPv4: 24 of IP header, 12 of IGMPv3 query; 1280 for
// IPv6: 48 of IP and hop-by-hop headers, 28 of MLDv2 query).
const (
	maxQuerySources4 = (576 - 24 - 12) / 4
	maxQuerySources6 = (1280 - 48 - 28) / 16
)

var (
	allSystems = netip.AddrFrom4([4]byte{224, 0, 0, 1}) // all IPv4 hosts
	allNodes   = netip.MustParseAddr("ff02::1")         // all IPv6 nodes of the link
)

// querySources is the table's "Send Q(G,X)". Only the querier sends, and
// only IGMPv3 and MLDv2 can ask about sources.
func (g *group) querySources(now time.Time, x []netip.Addr) {
	f := g.fam
	if !f.querier || f.version < f.topVersion() {
		return
	}
	lmqt := f.lmqt()
	for _, a := range x {
		if s := g.sources[a]; s != nil && s.timer.Sub(now) > lmqt {
			s.timer, s.rtx = now.Add(lmqt), f.rv()
			g.sendNow = true
		}
	}
}

// queryGroup is the table's "Send Q(G)" (and the IGMPv2 / MLDv1 querier's
// answer to a leave or done, RFC 2236 §3, RFC 2710 §4).
func (g *group) queryGroup(now time.Time) {
	f := g.fam
	if !f.querier {
		return
	}
	if until := now.Add(f.lmqt()); g.timer.After(until) {
		g.timer = until
	}
	g.gsqLeft, g.sendNow = f.rv(), true
}

// sendPending sends the round a Send Q action asked for, if any.
func (g *group) sendPending(now time.Time) {
	if g.sendNow {
		g.sendNow = false
		g.round(now)
	}
}

// round sends one round of specific queries and schedules the next.
func (g *group) round(now time.Time) {
	f := g.fam
	lmqt := f.lmqt()
	sentGroup := false
	if g.gsqLeft > 0 {
		g.gsqLeft--
		f.sendQuery(g.addr, nil, g.timer.Sub(now) > lmqt, f.lmqi)
		sentGroup = true
	}
	var hi, lo []netip.Addr
	more := g.gsqLeft > 0
	for a, s := range g.sources {
		if s.rtx == 0 {
			continue
		}
		s.rtx--
		more = more || s.rtx > 0
		if s.timer.Sub(now) > lmqt {
			hi = append(hi, a)
		} else {
			lo = append(lo, a)
		}
	}
	if len(hi) > 0 && !sentGroup {
		slices.SortFunc(hi, netip.Addr.Compare)
		f.sendQuery(g.addr, hi, true, f.lmqi)
	}
	if len(lo) > 0 {
		slices.SortFunc(lo, netip.Addr.Compare)
		f.sendQuery(g.addr, lo, false, f.lmqi)
	}
	g.rtx = time.Time{}
	if more {
		g.rtx = now.Add(f.lmqi)
	}
	f.touch(g)
}

// sendQuery queues a query for group (invalid: a general query) about
// sources, split to fit the MTU. General queries go to all-systems
// (224.0.0.1) or all-nodes (ff02::1); specific ones to the group itself
// (RFC 3376 §4.1.12, RFC 3810 §5.1.15).
func (f *family) sendQuery(grp netip.Addr, sources []netip.Addr, s bool, maxResp time.Duration) {
	m := &Message{Type: TypeIGMPQuery, Version: f.version, Group: grp, Suppress: s}
	dst, per := allSystems, maxQuerySources4
	if f.v6 {
		m.Type, dst, per = TypeMLDQuery, allNodes, maxQuerySources6
	}
	if grp.IsValid() {
		dst = grp
	} else if f.v6 {
		m.Group = netip.IPv6Unspecified()
	} else {
		m.Group = netip.IPv4Unspecified()
	}
	switch {
	case f.v6 && f.version == 1:
		m.MaxRespCode = mldv1Code(maxResp)
	case f.v6:
		m.MaxRespCode = EncodeMLDv2Code(maxResp)
	case f.version == 2:
		m.MaxRespCode = uint16(v2Code(maxResp))
	case f.version == 3:
		m.MaxRespCode = uint16(EncodeIGMPv3Code(maxResp))
	}
	if f.version == f.topVersion() {
		if f.cfgRV <= 7 { // else 0: "unknown" (RFC 3376 §4.1.6)
			m.QRV = uint8(f.cfgRV)
		}
		m.QQIC = EncodeQQIC(f.cfgQI)
	}
	for {
		m.Sources = sources[:min(per, len(sources))]
		frame, err := m.Frame(f.r.mac, f.self, dst)
		if err != nil {
			// Unreachable: New validated every field that goes in.
			return
		}
		f.r.out = append(f.r.out, frame)
		f.stats.Sent.countQuery(m)
		if sources = sources[len(m.Sources):]; len(sources) == 0 {
			return
		}
	}
}
