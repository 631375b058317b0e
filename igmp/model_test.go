package igmp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// model is a naive, literal transcription of RFC 3376 §6.4-§6.6 for one
// group on a querier: sets as maps, every table row written out with set
// algebra. The randomized test checks the Router against it.
type model struct {
	exclude bool
	gt      time.Time
	timers  map[netip.Addr]time.Time // A in INCLUDE; X (non-zero) and Y (zero) in EXCLUDE
}

type aset map[netip.Addr]bool

func toSet(a []netip.Addr) aset {
	s := aset{}
	for _, x := range a {
		s[x] = true
	}
	return s
}

func (m *model) keys(pred func(t time.Time) bool) aset {
	s := aset{}
	for a, t := range m.timers {
		if pred(t) {
			s[a] = true
		}
	}
	return s
}

func union(a, b aset) aset {
	s := aset{}
	for x := range a {
		s[x] = true
	}
	for x := range b {
		s[x] = true
	}
	return s
}

func inter(a, b aset) aset {
	s := aset{}
	for x := range a {
		if b[x] {
			s[x] = true
		}
	}
	return s
}

func minus(a, b aset) aset {
	s := aset{}
	for x := range a {
		if !b[x] {
			s[x] = true
		}
	}
	return s
}

func (m *model) apply(now time.Time, typ RecordType, srcs []netip.Addr) {
	gmi, lmqt := now.Add(gmi), now.Add(lmqt)
	any := func(time.Time) bool { return true }
	running := func(t time.Time) bool { return !t.IsZero() }
	stopped := func(t time.Time) bool { return t.IsZero() }
	set := func(s aset, t time.Time) {
		for a := range s {
			m.timers[a] = t
		}
	}
	del := func(s aset) {
		for a := range s {
			delete(m.timers, a)
		}
	}
	q := func(s aset) { // Send Q(G,S): lower timers above LMQT
		for a := range s {
			if m.timers[a].After(lmqt) {
				m.timers[a] = lmqt
			}
		}
	}
	B := toSet(srcs)
	if !m.exclude {
		A := m.keys(any)
		switch typ {
		case ModeIsInclude, AllowNewSources:
			set(B, gmi)
		case ModeIsExclude, ChangeToExcludeMode:
			set(minus(B, A), time.Time{})
			del(minus(A, B))
			if typ == ChangeToExcludeMode {
				q(inter(A, B))
			}
			m.exclude, m.gt = true, gmi
		case ChangeToIncludeMode:
			set(B, gmi)
			q(minus(A, B))
		case BlockOldSources:
			q(inter(A, B))
		}
		return
	}
	X, Y := m.keys(running), m.keys(stopped)
	switch typ {
	case ModeIsInclude, AllowNewSources:
		set(B, gmi)
	case ModeIsExclude:
		set(minus(minus(B, X), Y), gmi)
		del(minus(X, B))
		del(minus(Y, B))
		m.gt = gmi
	case ChangeToExcludeMode:
		set(minus(minus(B, X), Y), m.gt)
		del(minus(X, B))
		del(minus(Y, B))
		q(minus(B, Y))
		m.gt = gmi
	case ChangeToIncludeMode:
		set(B, gmi)
		q(minus(X, B))
		if m.gt.After(lmqt) {
			m.gt = lmqt
		}
	case BlockOldSources:
		set(minus(minus(B, X), Y), m.gt)
		q(minus(B, Y))
	}
}

// advance fires expiries in time order: sources, then the group timer.
func (m *model) advance(to time.Time) {
	for {
		next := time.Time{}
		for _, t := range m.timers {
			next = earliest(next, t)
		}
		if m.exclude {
			next = earliest(next, m.gt)
		}
		if next.IsZero() || next.After(to) {
			return
		}
		for a, t := range m.timers {
			if !t.IsZero() && !t.After(next) {
				if m.exclude {
					m.timers[a] = time.Time{}
				} else {
					delete(m.timers, a)
				}
			}
		}
		if m.exclude && !m.gt.After(next) {
			m.exclude, m.gt = false, time.Time{}
			for a, t := range m.timers {
				if t.IsZero() {
					delete(m.timers, a)
				}
			}
		}
	}
}

func (m *model) state(now time.Time) string {
	var s []string
	for a, t := range m.timers {
		s = append(s, fmt.Sprintf("%v=%v", a, remaining(t, now)))
	}
	slices.Sort(s)
	mode := filter.Include
	if m.exclude {
		mode = filter.Exclude
	}
	return fmt.Sprintf("%v gt=%v %v", mode, remaining(m.gt, now), s)
}

func routerState(g *rig) string {
	st := g.state(grp)
	var s []string
	for _, x := range st.Sources {
		s = append(s, fmt.Sprintf("%v=%v", x.Addr, x.Timer))
	}
	slices.Sort(s)
	return fmt.Sprintf("%v gt=%v %v", st.Filter.Mode, st.GroupTimer, s)
}

func TestRandomAgainstModel(t *testing.T) {
	pool := []netip.Addr{sa, sb, sc, ip("10.9.0.4")}
	steps := []time.Duration{0, 100 * time.Millisecond, time.Second, 2 * time.Second, 30 * time.Second, 200 * time.Second, 300 * time.Second}
	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		cfg := testConfig()
		cfg.DisableIPv6 = true
		g := newRig(t, cfg)
		m := &model{timers: map[netip.Addr]time.Time{}}
		var trail []string
		for i := range 60 {
			d := g.now.Sub(t0) + steps[rnd.IntN(len(steps))]
			g.runUntil(d)
			m.advance(g.now)
			typ := RecordType(1 + rnd.IntN(6))
			var srcs []netip.Addr
			for _, a := range pool {
				if rnd.IntN(2) == 0 {
					srcs = append(srcs, a)
				}
			}
			g.v3(rec(typ, grp, srcs...))
			m.apply(g.now, typ, set(srcs...))
			trail = append(trail, fmt.Sprintf("%v %v%v", g.now.Sub(t0), typ, srcs))
			if got, want := routerState(g), m.state(g.now); got != want {
				t.Fatalf("seed %d step %d: router %s, model %s\n%v", seed, i, got, want, trail)
			}
			mf := filter.Filter{}
			if m.exclude {
				mf.Mode = filter.Exclude
			}
			for a, t := range m.timers {
				if mf.Mode == filter.Include || t.IsZero() {
					mf.Sources = append(mf.Sources, a)
				}
			}
			mf.Sources = set(mf.Sources...)
			if f := g.r.Filter(grp); !f.Equal(mf) {
				t.Fatalf("seed %d step %d: filter %v, model %v", seed, i, f, mf)
			}
			// Events tell the same story as Filter, and only on change.
			want, last := fmt.Sprintf("%v %v", grp, mf), fmt.Sprintf("%v %v", grp, filter.Filter{})
			for j, e := range g.events {
				e = e[strings.Index(e, " ")+1:]
				if e == last {
					t.Fatalf("seed %d step %d: event %d repeats %q", seed, i, j, e)
				}
				last = e
			}
			if last != want {
				t.Fatalf("seed %d step %d: last event %q, filter %v", seed, i, last, want)
			}
		}
	}
}
