package igmp

// The querier: election, general queries, and the values a non-querier
// adopts from the querier. RFC 3376 §6.6.2 and §8, RFC 3810 §7.6.2 and §9;
// the two protocols share this code with different numbers.

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// family is the router state of one protocol: IGMP (IPv4) or MLD (IPv6).
type family struct {
	r       *Router
	v6      bool
	version int        // querier version: IGMP 1..3, MLD 1..2
	self    netip.Addr // query source: IPv4 (0.0.0.0 if unset), IPv6 link-local, or invalid
	// canQuery is false only for MLD without a link-local source.
	canQuery bool
	cfgRV    int
	cfgQI    time.Duration
	qri      time.Duration
	lmqi     time.Duration
	stats    *FamilyStats

	querier     bool
	startupLeft int        // startup queries still to send (RFC 3376 §8.6, §8.7)
	queryTimer  time.Time  // next general query; zero unless querier
	other       netip.Addr // the querier we defer to
	otherVer    int        // the version of its last query
	otherTimer  time.Time  // other-querier-present timer; zero if not running
	// learnedRV and learnedQI are the QRV and QQI of the querier's last
	// v3/MLDv2 query, which a non-querier adopts (RFC 3376 §4.1.6, §4.1.7;
	// RFC 3810 §5.1.8, §5.1.9); 0 means "use our own".
	learnedRV int
	learnedQI time.Duration

	groups  map[netip.Addr]*group
	timers  timerHeap // group deadlines (timers.go)
	touched []*group  // groups whose timers changed since the last sync
}

func newFamily(r *Router, v6 bool, cfg Config, now time.Time) *family {
	f := &family{r: r, v6: v6, version: cfg.Version, cfgRV: cfg.Robustness, cfgQI: cfg.QueryInterval,
		qri: cfg.QueryResponseInterval, lmqi: cfg.LastMemberQueryInterval, stats: &r.stats.IGMP,
		groups: make(map[netip.Addr]*group)}
	if v6 {
		f.stats, f.version = &r.stats.MLD, 1
		if cfg.Version == 3 {
			f.version = 2
		}
		f.self, f.canQuery = cfg.IPv6, cfg.IPv6.IsValid()
	} else {
		f.self, f.canQuery = cfg.IPv4, true
		if !f.self.IsValid() {
			f.self = netip.IPv4Unspecified()
		}
	}
	if f.canQuery {
		// RFC 3376 §6.6.2: a router starts as the querier and sends
		// [Startup Query Count] = robustness general queries.
		f.querier, f.queryTimer, f.startupLeft = true, now, cfg.Robustness
	}
	return f
}

// topVersion is the newest version of the protocol: IGMPv3, MLDv2.
func (f *family) topVersion() int {
	if f.v6 {
		return 2
	}
	return 3
}

// rv and qi are the robustness variable and query interval in force: our
// own, or the querier's while we are not it.
func (f *family) rv() int {
	if !f.querier && f.learnedRV > 0 {
		return f.learnedRV
	}
	return f.cfgRV
}

func (f *family) qi() time.Duration {
	if !f.querier && f.learnedQI > 0 {
		return f.learnedQI
	}
	return f.cfgQI
}

// respInterval is how long hosts of the given version may take to answer
// a general query. IGMPv1 hosts ignore the code and take up to 10 s
// (RFC 2236 §4), so timeouts for them must allow that much.
func (f *family) respInterval(version int) time.Duration {
	if !f.v6 && version == 1 {
		return max(f.qri, v1MaxResp)
	}
	return f.qri
}

// gmi is the Group Membership Interval (RFC 3376 §8.4, RFC 3810 §9.4
// Multicast Address Listening Interval): robustness × QI + QRI, long
// enough for [robustness] general queries to go unanswered. It is also
// the Older Host Present Interval (RFC 3376 §8.13, RFC 3810 §9.13).
func (f *family) gmi(version int) time.Duration {
	return time.Duration(f.rv())*f.qi() + f.respInterval(version)
}

// oqpi is the Other Querier Present Interval (RFC 3376 §8.5, RFC 3810
// §9.5): robustness × QI + QRI/2, so [robustness] queries of the querier
// must be missed before we take over.
func (f *family) oqpi() time.Duration {
	return time.Duration(f.rv())*f.qi() + f.respInterval(f.version)/2
}

// lmqt is the Last Member Query Time (RFC 3376 §8.9, §8.10): Last Member
// Query Count (= robustness) × Last Member Query Interval.
func (f *family) lmqt() time.Duration { return time.Duration(f.rv()) * f.lmqi }

// defersTo reports whether a query from src makes us a non-querier: the
// lower address wins (RFC 3376 §6.6.2, RFC 3810 §7.6.2). A router with no
// address of its own always defers. A query from 0.0.0.0 (a snooping
// switch's proxy querier, or another unaddressed router) never outranks
// a real address.
func (f *family) defersTo(src netip.Addr) bool {
	switch {
	case !f.canQuery || f.self.IsUnspecified():
		return true
	case src.IsUnspecified():
		return false
	}
	return src.Less(f.self)
}

// heardQuery handles a query from another router.
func (f *family) heardQuery(now time.Time, src netip.Addr, m *Message) {
	f.stats.Received.countQuery(m)
	if f.defersTo(src) {
		f.querier, f.queryTimer, f.startupLeft = false, time.Time{}, 0
		f.other, f.otherVer = src, m.Version
		// Only v3/MLDv2 queries carry QRV and QQI; 0 means "use our own".
		f.learnedRV, f.learnedQI = 0, 0
		if m.Version == f.topVersion() {
			f.learnedRV, f.learnedQI = int(m.QRV), m.QQI()
		}
		f.otherTimer = now.Add(f.oqpi())
		f.r.nextValid = false
	}
	// RFC 3376 §6.6.1, RFC 2236 §6, RFC 3810 §7.6.1: a group-specific or
	// group-and-source-specific query with S clear lowers the timers it
	// asks about to [Last Member Query Count] × its Max Resp Time, so every
	// router times the group out together. v1/v2 queries have no S flag.
	g := f.groups[m.Group]
	if m.Group.IsUnspecified() || g == nil || m.Suppress {
		return
	}
	lmqc := f.rv()
	if m.QRV != 0 {
		lmqc = int(m.QRV)
	}
	until := now.Add(time.Duration(lmqc) * m.MaxResp())
	if len(m.Sources) == 0 {
		if g.mode == filter.Exclude && g.timer.After(until) {
			g.timer = until
		}
	} else {
		for _, a := range m.Sources {
			if s := g.sources[a]; s != nil && s.timer.After(until) {
				s.timer = until
			}
		}
	}
	f.r.markDirty(g)
}

// fire runs every timer of the family that is due at t (the earliest
// pending deadline); now is the time of the Advance call.
func (f *family) fire(t, now time.Time) {
	if !f.otherTimer.IsZero() && !f.otherTimer.After(t) {
		// RFC 3376 §6.6.2: the other querier went silent; take over with
		// a general query now, and our own QRV and QI again.
		f.otherTimer, f.other, f.otherVer, f.learnedRV, f.learnedQI = time.Time{}, netip.Addr{}, 0, 0, 0
		if f.canQuery {
			f.querier, f.queryTimer = true, t
		}
	}
	if !f.queryTimer.IsZero() && !f.queryTimer.After(t) {
		f.sendQuery(netip.Addr{}, nil, false, f.qri)
		interval := f.cfgQI
		if f.startupLeft > 0 {
			f.startupLeft--
		}
		if f.startupLeft > 0 {
			interval = f.cfgQI / 4 // Startup Query Interval (RFC 3376 §8.6)
		}
		f.queryTimer = t.Add(interval)
		if !f.queryTimer.After(now) {
			f.queryTimer = now.Add(interval) // late: do not send a burst
		}
	}
	due := f.dueGroups(t)
	slices.SortFunc(due, func(a, b *group) int { return a.addr.Compare(b.addr) })
	for _, g := range due {
		g.fire(t)
	}
}

func (f *family) earliest() time.Time {
	return earliest(earliest(f.queryTimer, f.otherTimer), f.groupsEarliest())
}

// QuerierState describes the querier role of one protocol.
type QuerierState struct {
	Family              int        // 4 (IGMP) or 6 (MLD)
	Querier             bool       // we are the querier
	Version             int        // our querier version: IGMP 1..3, MLD 1..2
	OtherQuerier        netip.Addr // the querier we defer to, if any
	OtherVersion        int        // the version it queries with (IGMP 1..3, MLD 1..2)
	OtherQuerierPresent time.Duration
	NextQuery           time.Duration // until our next general query (0: not querier)
	StartupQueriesLeft  int
}

// Queriers returns the querier state of each enabled protocol, IGMP first.
func (r *Router) Queriers(now time.Time) []QuerierState {
	var out []QuerierState
	for i, f := range r.fams {
		if f == nil {
			continue
		}
		out = append(out, QuerierState{Family: 4 + 2*i, Querier: f.querier, Version: f.version,
			OtherQuerier: f.other, OtherVersion: f.otherVer, OtherQuerierPresent: remaining(f.otherTimer, now),
			NextQuery: remaining(f.queryTimer, now), StartupQueriesLeft: f.startupLeft})
	}
	return out
}

// remaining is what is left of a timer at now; 0 if it is not running.
func remaining(t, now time.Time) time.Duration {
	if t.IsZero() || !t.After(now) {
		return 0
	}
	return t.Sub(now)
}
