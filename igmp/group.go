package igmp

// Per-group router state and its two tables: RFC 3376 §6.4 (IGMPv3) and
// RFC 3810 §7.4 (MLDv2), which are the same table.
//
//	INCLUDE (A): forward the sources in A; every one has a running timer.
//	EXCLUDE (X,Y): forward everything but Y; X are sources with running
//	  timers (someone asked for them by name), Y those whose timer is 0.
//	  The group timer runs; when it expires the group falls back to
//	  INCLUDE (X), or is deleted if X is empty (§6.5).

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

type group struct {
	fam     *family
	addr    netip.Addr
	mode    filter.Mode
	timer   time.Time // group timer; running (non-zero) exactly in EXCLUDE mode
	sources map[netip.Addr]*source
	// hostPresent holds the older-version host present timers by version:
	// [1] IGMPv1 or MLDv1, [2] IGMPv2 (RFC 3376 §7.3.2, RFC 3810 §8.3.2).
	hostPresent  [3]time.Time
	lastReporter netip.Addr

	// Retransmission of group-specific and group-and-source-specific
	// queries (specific.go).
	rtx     time.Time // next round; zero if none
	gsqLeft int       // Q(G) transmissions left
	sendNow bool      // a Send Q action of the table asks for a round now

	reported filter.Filter // the filter of the last event
	dirty    bool          // queued in Router.dirty
	touched  bool          // queued in family.touched (timers.go)
	due      bool          // in the list dueGroups is making
	gone     bool          // deleted from its family
}

type source struct {
	timer time.Time // zero: not running (EXCLUDE's Y)
	rtx   int       // Q(G,S) transmissions left for this source
}

func (f *family) newGroup(addr netip.Addr) (*group, error) {
	if len(f.groups) >= maxGroups {
		return nil, ErrLimit
	}
	g := &group{fam: f, addr: addr, sources: make(map[netip.Addr]*source)}
	f.groups[addr] = g
	return g, nil
}

// compat is the group's compatibility mode: the oldest host version heard
// within the Older Host Present Interval, never above the querier version.
// Its timers need no firing: expiry only changes what compat returns.
func (g *group) compat(now time.Time) int {
	for v := 1; v < g.fam.version; v++ {
		if now.Before(g.hostPresent[v]) {
			return v
		}
	}
	return g.fam.version
}

// filter is the state the link wants: INCLUDE(A), or EXCLUDE(Y).
func (g *group) filter() filter.Filter {
	f := filter.Filter{Mode: g.mode}
	for a, s := range g.sources {
		if g.mode == filter.Include || s.timer.IsZero() {
			f.Sources = append(f.Sources, a)
		}
	}
	slices.SortFunc(f.Sources, netip.Addr.Compare)
	return f
}

// apply is the table of RFC 3376 §6.4.1 (current-state records) and §6.4.2
// (state-change records); b is the record's source list, sorted and unique.
// "Send Q" actions queue queries (specific.go) when we are the querier.
func (g *group) apply(now time.Time, typ RecordType, b []netip.Addr) {
	gmi := now.Add(g.fam.gmi(g.compat(now)))
	g.fam.r.markDirty(g)
	if g.mode == filter.Include {
		switch typ {
		case ModeIsInclude, AllowNewSources: // INCLUDE (A+B); (B)=GMI
			g.setTimers(b, gmi)
		case ModeIsExclude, ChangeToExcludeMode: // EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); Group Timer=GMI
			q := g.pick(b, true, false) // A*B, asked about by TO_EX
			g.keepOnly(b)
			g.addNew(b, time.Time{})
			g.mode, g.timer = filter.Exclude, gmi
			if typ == ChangeToExcludeMode {
				g.querySources(now, q) // Send Q(G,A*B)
			}
		case ChangeToIncludeMode: // INCLUDE (A+B); (B)=GMI; Send Q(G,A-B)
			q := g.pick(b, false, false)
			g.setTimers(b, gmi)
			g.querySources(now, q)
		case BlockOldSources: // INCLUDE (A); Send Q(G,A*B)
			g.querySources(now, g.pick(b, true, false))
		}
		return
	}
	switch typ {
	case ModeIsInclude, AllowNewSources: // EXCLUDE (X+A, Y-A); (A)=GMI
		g.setTimers(b, gmi)
	case ModeIsExclude: // EXCLUDE (A-Y, Y*A); (A-X-Y)=GMI; Delete (X-A), (Y-A); Group Timer=GMI
		g.keepOnly(b)
		g.addNew(b, gmi)
		g.timer = gmi
	case ChangeToExcludeMode: // EXCLUDE (A-Y, Y*A); (A-X-Y)=Group Timer; Delete (X-A), (Y-A); Send Q(G,A-Y); Group Timer=GMI
		g.keepOnly(b)
		g.addNew(b, g.timer)
		g.querySources(now, g.pick(b, true, true))
		g.timer = gmi
	case ChangeToIncludeMode: // EXCLUDE (X+A, Y-A); (A)=GMI; Send Q(G,X-A); Send Q(G)
		q := g.pick(b, false, true)
		g.setTimers(b, gmi)
		g.querySources(now, q)
		g.queryGroup(now)
	case BlockOldSources: // EXCLUDE (X+(A-Y), Y); (A-X-Y)=Group Timer; Send Q(G,A-Y)
		g.addNew(b, g.timer)
		g.querySources(now, g.pick(b, true, true))
	}
}

// pick returns, sorted, the sources of the group that are in b (inB) or
// not, restricted to those with running timers if running is set.
func (g *group) pick(b []netip.Addr, inB, running bool) []netip.Addr {
	var out []netip.Addr
	for a, s := range g.sources {
		if has(b, a) == inB && (!running || !s.timer.IsZero()) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func has(sorted []netip.Addr, a netip.Addr) bool {
	_, ok := slices.BinarySearchFunc(sorted, a, netip.Addr.Compare)
	return ok
}

// setTimers sets the timers of the sources in b to t, adding missing ones.
func (g *group) setTimers(b []netip.Addr, t time.Time) {
	for _, a := range b {
		if s := g.sources[a]; s != nil {
			s.timer = t
		} else {
			g.sources[a] = &source{timer: t}
		}
	}
}

// addNew adds the sources of b the group does not have, with timer t.
func (g *group) addNew(b []netip.Addr, t time.Time) {
	for _, a := range b {
		if g.sources[a] == nil {
			g.sources[a] = &source{timer: t}
		}
	}
}

// keepOnly deletes the sources that are not in b.
func (g *group) keepOnly(b []netip.Addr) {
	for a := range g.sources {
		if !has(b, a) {
			delete(g.sources, a)
		}
	}
}

// fire runs the group's timers that are due at t.
func (g *group) fire(t time.Time) {
	g.fam.touch(g)
	for a, s := range g.sources {
		if !s.timer.IsZero() && !s.timer.After(t) {
			// RFC 3376 §6.3: in INCLUDE mode an expired source is no
			// longer forwarded and is deleted; in EXCLUDE mode it moves
			// to the exclude list (Y) until the group timer expires.
			if g.mode == filter.Include {
				delete(g.sources, a)
			} else {
				s.timer, s.rtx = time.Time{}, 0
			}
			g.fam.r.markDirty(g)
		}
	}
	if g.mode == filter.Exclude && !g.timer.After(t) {
		// RFC 3376 §6.5: back to INCLUDE with the sources still
		// requested (X); Y is deleted. No X at all: the group is gone.
		g.mode, g.timer, g.gsqLeft = filter.Include, time.Time{}, 0
		for a, s := range g.sources {
			if s.timer.IsZero() {
				delete(g.sources, a)
			}
		}
		g.fam.r.markDirty(g)
	}
	if !g.rtx.IsZero() && !g.rtx.After(t) {
		g.round(t)
	}
}

// earliest is the group's next deadline (zero if none).
func (g *group) earliest() time.Time {
	t := g.rtx
	if g.mode == filter.Exclude {
		t = earliest(t, g.timer)
	}
	for _, s := range g.sources {
		t = earliest(t, s.timer)
	}
	return t
}

// GroupState is the full router state of one group, for ipopctl and tests.
type GroupState struct {
	Group        netip.Addr
	Filter       filter.Filter
	Compat       int           // host compatibility version: IGMP 1..3, MLD 1..2
	GroupTimer   time.Duration // remaining; 0 in INCLUDE mode
	Sources      []SourceState // sorted by address
	LastReporter netip.Addr
}

// SourceState is one source record of a group.
type SourceState struct {
	Addr    netip.Addr
	Timer   time.Duration // remaining; 0 for EXCLUDE's exclude list
	Forward bool          // traffic from it reaches the link
}

// Groups returns the state of every group, sorted by group (IPv4 first).
func (r *Router) Groups(now time.Time) []GroupState {
	var out []GroupState
	for _, f := range r.fams {
		if f == nil {
			continue
		}
		for _, g := range f.groups {
			gs := GroupState{Group: g.addr, Filter: g.filter(), Compat: g.compat(now),
				GroupTimer: remaining(g.timer, now), LastReporter: g.lastReporter}
			for a, s := range g.sources {
				gs.Sources = append(gs.Sources, SourceState{Addr: a, Timer: remaining(s.timer, now),
					Forward: g.mode == filter.Include || !s.timer.IsZero()})
			}
			slices.SortFunc(gs.Sources, func(a, b SourceState) int { return a.Addr.Compare(b.Addr) })
			out = append(out, gs)
		}
	}
	slices.SortFunc(out, func(a, b GroupState) int { return a.Group.Compare(b.Group) })
	return out
}
