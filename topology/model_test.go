package topology

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The randomized test drives several Advertisers and one Table through a
// lossy, reordering link and compares the Table's View, after every step,
// with a naive model. The model holds no deltas: it records every state
// each sender has had, by (epoch, seq), and expects the receiver to show
// exactly the snapshot of the newest message it could use.

type sender struct {
	id       nodeid.ID
	adv      *Advertiser
	history  map[[2]uint64]map[netip.Addr]filter.Filter // (epoch, seq) → state
	inFlight [][]byte                                   // encoded, in send order
}

func (s *sender) record() {
	s.history[[2]uint64{s.adv.Epoch(), s.adv.Seq()}] = s.adv.Groups()
}

func (s *sender) send(t *testing.T, m *Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s.inFlight = append(s.inFlight, b)
}

// expected is what the model says the receiver knows of one sender.
type expected struct {
	synced     bool
	epoch, seq uint64
	groups     map[netip.Addr]filter.Filter
	since      map[netip.Addr]time.Time
	heard      time.Time
	refresh    time.Duration
	asked      time.Time
}

type model struct {
	t     *testing.T
	rng   *rand.Rand
	now   time.Time
	table *Table
	snd   []*sender
	exp   map[nodeid.ID]*expected
	// seen counts the paths taken, so the test fails if a change to the
	// generator stops exercising one of them.
	seen map[string]int
}

var (
	modelGroups = ips("232.1.1.1", "239.1.1.1", "239.2.2.2", "224.0.1.1", "ff3e::1", "ff05::2", "ff0e::3")
	modelSrc4   = ips("10.0.0.1", "10.0.0.2", "10.0.0.3", "192.0.2.1")
	modelSrc6   = ips("fd00::1", "fd00::2", "2001:db8::1")
)

func (md *model) randomFilter(g netip.Addr) filter.Filter {
	pool := modelSrc4
	if g.Is6() {
		pool = modelSrc6
	}
	f := filter.Filter{Mode: filter.Mode(md.rng.IntN(2))}
	for _, s := range pool {
		if md.rng.IntN(3) == 0 {
			f.Sources = append(f.Sources, s)
		}
	}
	if md.rng.IntN(4) == 0 { // make leaves and any-source joins common
		f = filter.Filter{Mode: filter.Mode(md.rng.IntN(2))}
	}
	return f
}

func (md *model) step() {
	r, s := md.rng.IntN(100), md.snd[md.rng.IntN(len(md.snd))]
	switch {
	case r < 25:
		g := modelGroups[md.rng.IntN(len(modelGroups))]
		if d, changed := s.adv.Set(g, md.randomFilter(g)); changed {
			s.record()
			s.send(md.t, d)
		}
	case r < 30:
		s.send(md.t, s.adv.Full())
	case r < 80:
		if len(s.inFlight) > 0 {
			// Mostly in order, as one path delivers; sometimes any
			// message overtakes the rest.
			i := 0
			if md.rng.IntN(4) == 0 {
				i = md.rng.IntN(len(s.inFlight))
			}
			b := s.inFlight[i]
			s.inFlight = slices.Delete(s.inFlight, i, i+1)
			if md.rng.IntN(8) > 0 { // else lost
				md.deliver(s, b)
			}
		}
	case r < 81:
		s.adv = NewAdvertiser(md.rng.Uint64()) // restart; old messages stay in flight
		s.adv.SetRefresh(time.Duration(5+md.rng.IntN(10)) * time.Second)
		s.record()
	case r < 99:
		// Half-second steps land exactly on expiry deadlines now and then.
		d := time.Duration(md.rng.IntN(6)) * 500 * time.Millisecond
		if md.rng.IntN(50) == 0 {
			d = 40 * time.Second
		}
		md.now = md.now.Add(d)
		md.expire()
	default:
		md.remove(s.id)
	}
	md.check()
}

func (md *model) deliver(s *sender, b []byte) {
	var m Message
	if err := m.UnmarshalBinary(b); err != nil {
		md.t.Fatalf("decode what was sent: %v", err)
	}
	e := md.exp[s.id]
	if e == nil {
		e = &expected{}
		md.exp[s.id] = e
	}
	e.heard = md.now
	current := e.synced && e.epoch == m.Epoch
	var next map[netip.Addr]filter.Filter
	var wantSync bool
	switch {
	case current && (m.Seq < e.seq || m.Kind == KindDelta && m.Seq == e.seq):
		md.seen["stale"]++
	case m.Kind == KindFull || current && m.Seq == e.seq+1:
		md.seen["applied "+m.Kind.String()]++
		e.synced, e.epoch, e.seq, e.refresh = true, m.Epoch, m.Seq, m.Refresh
		if m.Kind == KindFull {
			e.asked = time.Time{}
		}
		next = s.history[[2]uint64{m.Epoch, m.Seq}]
	default:
		e.refresh = m.Refresh
		if wantSync = e.asked.IsZero() || md.now.Sub(e.asked) >= SyncRetry; wantSync {
			e.asked = md.now
		}
		md.seen[fmt.Sprint("gap, sync ", wantSync)]++
	}
	wantChange := next != nil && !maps.EqualFunc(next, e.groups, filter.Filter.Equal)
	if next != nil {
		since := make(map[netip.Addr]time.Time)
		for g := range next {
			if _, had := e.groups[g]; had {
				since[g] = e.since[g]
			} else {
				since[g] = md.now
			}
		}
		e.groups, e.since = next, since
	}
	changed, needSync := md.table.Apply(s.id, &m, md.now)
	if changed {
		md.seen["changed"]++
	}
	if changed != wantChange || needSync != wantSync {
		md.t.Fatalf("Apply(%v epoch %x seq %d) = %v, %v; model %v, %v", m.Kind, m.Epoch, m.Seq, changed, needSync, wantChange, wantSync)
	}
	if needSync { // answer like the node would, through the same lossy link
		s.send(md.t, s.adv.Full())
	}
	if m.Kind == KindFull && next != nil {
		// The property the protocol exists for: after a full state, the
		// receiver has exactly what the sender had then.
		got := filtersOf(md.t, md.table.View(), s.id)
		want := m.Groups
		if len(got) != len(want) {
			md.t.Fatalf("after full: %v, sent %v", got, want)
		}
		for _, g := range want {
			if !got[g.Addr].Equal(g.Filter) {
				md.t.Fatalf("after full: %v has %v, sent %v", g.Addr, got[g.Addr], g.Filter)
			}
		}
	}
}

func (md *model) expire() {
	want := false
	for id, e := range md.exp {
		if md.now.Sub(e.heard) >= 3*e.refresh {
			want = want || len(e.groups) > 0
			delete(md.exp, id)
			md.seen["expired"]++
		}
	}
	if got := md.table.Expire(md.now); got != want {
		md.t.Fatalf("Expire = %v, model %v", got, want)
	}
}

func (md *model) remove(id nodeid.ID) {
	e := md.exp[id]
	delete(md.exp, id)
	md.seen["removed"]++
	if got, want := md.table.Remove(id), e != nil && len(e.groups) > 0; got != want {
		md.t.Fatalf("Remove = %v, model %v", got, want)
	}
}

// check compares the whole View, and Targets for every group and source,
// with the model.
func (md *model) check() {
	v := md.table.View()
	got := viewState(md.t, v)
	for _, id := range slices.SortedFunc(maps.Keys(md.exp), cmpID) {
		e := md.exp[id]
		if len(got[id]) != len(e.groups) {
			md.t.Fatalf("node %s: view %v, model %v", id.Short(), got[id], e.groups)
		}
		for g, f := range e.groups {
			if s := got[id][g]; !s.Filter.Equal(f) || !s.Since.Equal(e.since[g]) {
				md.t.Fatalf("node %s group %v: view %v since %v, model %v since %v", id.Short(), g, s.Filter, s.Since, f, e.since[g])
			}
		}
	}
	for id := range got {
		if md.exp[id] == nil {
			md.t.Fatalf("view has node %s the model forgot", id.Short())
		}
	}
	var dst []nodeid.ID
	for _, g := range modelGroups {
		for _, src := range append(append(ips("10.9.9.9", "fd00::9"), modelSrc4...), modelSrc6...) {
			var want []nodeid.ID
			for _, id := range slices.SortedFunc(maps.Keys(md.exp), cmpID) {
				if f, ok := md.exp[id].groups[g]; ok && f.Allows(src) {
					want = append(want, id)
				}
			}
			if dst = v.Targets(g, src, dst[:0]); !slices.Equal(dst, want) {
				md.t.Fatalf("Targets(%v, %v) = %v, model %v", g, src, dst, want)
			}
		}
	}
}

func cmpID(a, b nodeid.ID) int { return slices.Compare(a[:], b[:]) }

func TestTableModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			md := &model{t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: epoch0, table: NewTable(), exp: make(map[nodeid.ID]*expected), seen: make(map[string]int)}
			for i := range 4 {
				s := &sender{id: nodeID(byte(i + 1)), adv: NewAdvertiser(md.rng.Uint64()), history: make(map[[2]uint64]map[netip.Addr]filter.Filter)}
				s.adv.SetRefresh(10 * time.Second)
				s.record()
				md.snd = append(md.snd, s)
			}
			for range 4000 {
				md.step()
			}
			// Converge: a full from every sender, delivered, is the end
			// state whatever happened before.
			for _, s := range md.snd {
				s.inFlight = nil
				s.send(t, s.adv.Full())
				md.deliver(s, s.inFlight[0])
				md.check()
				if got := filtersOf(t, md.table.View(), s.id); !maps.EqualFunc(got, s.adv.Groups(), filter.Filter.Equal) {
					t.Fatalf("node %s: converged to %v, has %v", s.id.Short(), got, s.adv.Groups())
				}
			}
			for _, path := range []string{"stale", "applied full", "applied delta", "gap, sync true", "gap, sync false", "expired", "removed", "changed"} {
				if md.seen[path] == 0 {
					t.Errorf("path %q never taken: %v", path, md.seen)
				}
			}
			t.Log(md.seen)
		})
	}
}
