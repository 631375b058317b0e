package topology

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Tests of what a Ring knows: ring order, successors, leases, the link
// state of its peers, hold-downs. nodeID(n) orders IDs by n.

func ids(ns ...byte) []nodeid.ID {
	out := make([]nodeid.ID, len(ns))
	for i, n := range ns {
		out[i] = nodeID(n)
	}
	return out
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func testRing(self byte, successors, chords int) *Ring {
	return NewRing(nodeID(self), RingConfig{Successors: successors, Chords: chords, Refresh: 10 * time.Second})
}

func TestRingSuccessorsWrap(t *testing.T) {
	tests := []struct {
		self  byte
		k     int
		known []byte
		order []byte // Known: clockwise from self
		succ  []byte
	}{
		{self: 100, k: 2, known: []byte{10, 50, 150, 250}, order: []byte{150, 250, 10, 50}, succ: []byte{150, 250}},
		{self: 200, k: 2, known: []byte{10, 50, 150, 250}, order: []byte{250, 10, 50, 150}, succ: []byte{250, 10}},
		{self: 255, k: 3, known: []byte{10, 50, 150}, order: []byte{10, 50, 150}, succ: []byte{10, 50, 150}},
		{self: 5, k: 3, known: []byte{200, 100}, order: []byte{100, 200}, succ: []byte{100, 200}},
		{self: 5, k: 1, known: nil, order: []byte{}, succ: []byte{}},
	}
	for _, tc := range tests {
		r := testRing(tc.self, tc.k, 0)
		for _, n := range tc.known {
			r.Learn(nodeID(n), epoch0)
		}
		r.Learn(nodeID(tc.self), epoch0) // self is never known
		if got := r.Known(epoch0); !slices.Equal(got, ids(tc.order...)) {
			t.Errorf("self %d: Known %v, want %v", tc.self, shorts(got), shorts(ids(tc.order...)))
		}
		succ, chords := r.Desired(epoch0)
		if !slices.Equal(succ, ids(tc.succ...)) || len(chords) != 0 {
			t.Errorf("self %d k %d: successors %v chords %v, want %v", tc.self, tc.k, shorts(succ), shorts(chords), tc.succ)
		}
	}
}

func TestRingLearnLease(t *testing.T) {
	r := testRing(1, 2, 0) // leases last 3×10 s
	x := nodeID(50)
	if !r.Learn(x, epoch0) || r.Learn(x, epoch0.Add(time.Second)) {
		t.Fatal("Learn must report a node new the first time only")
	}
	if !slices.Contains(r.Known(epoch0.Add(30*time.Second)), x) {
		t.Fatal("lease renewed at +1s must outlive +30s")
	}
	if slices.Contains(r.Known(epoch0.Add(31*time.Second)), x) {
		t.Fatal("lease must end 30s after the last Learn")
	}
	r.Learn(x, epoch0.Add(40*time.Second))
	r.Forget(x)
	if len(r.Known(epoch0.Add(40*time.Second))) != 0 {
		t.Fatal("Forget must drop a learnt node at once")
	}
}

func TestRingLinkState(t *testing.T) {
	r := testRing(1, 2, 0)
	p, q, x, y, z := nodeID(10), nodeID(20), nodeID(30), nodeID(40), nodeID(50)
	now := epoch0
	if r.Apply(p, &Neighbors{Links: []NeighborLink{{ID: x}}}) {
		t.Fatal("Neighbors from a node not linked must be ignored")
	}
	r.LinkUp(p, now)
	r.LinkUp(q, now)
	r.Apply(p, &Neighbors{Links: []NeighborLink{{ID: r.Self(), Wanted: true}, {ID: x}, {ID: y}}})
	r.Apply(q, &Neighbors{Links: []NeighborLink{{ID: z}}})
	if got := r.Known(now); !slices.Equal(got, []nodeid.ID{p, q, x, y, z}) {
		t.Fatalf("Known %v, want p q x y z", shorts(got))
	}
	// A new list replaces the old one: y is no longer p's link.
	if !r.Apply(p, &Neighbors{Links: []NeighborLink{{ID: x}}}) {
		t.Fatal("a changed list must report a change")
	}
	if r.Apply(p, &Neighbors{Links: []NeighborLink{{ID: x}}}) {
		t.Fatal("the same list again must report no change")
	}
	if got := r.Known(now); !slices.Equal(got, []nodeid.ID{p, q, x, z}) {
		t.Fatalf("after p dropped y: Known %v", shorts(got))
	}
	// A link closed on purpose leaves the peer and its list on a lease.
	r.LinkDown(q, now)
	if got := r.Known(now.Add(29 * time.Second)); !slices.Equal(got, []nodeid.ID{p, q, x, z}) {
		t.Fatalf("after LinkDown(q): Known %v", shorts(got))
	}
	if got := r.Known(now.Add(31 * time.Second)); !slices.Equal(got, []nodeid.ID{p, x}) {
		t.Fatalf("q's lease over: Known %v", shorts(got))
	}
	// A failed link takes the peer and its list at once.
	r.LinkFailed(p, now.Add(31*time.Second))
	if got := r.Known(now.Add(31 * time.Second)); len(got) != 0 {
		t.Fatalf("after LinkFailed(p): Known %v", shorts(got))
	}
}

func TestRingHoldDown(t *testing.T) {
	r := NewRing(nodeID(1), RingConfig{Successors: 2, HoldDown: 20 * time.Second})
	p, x := nodeID(10), nodeID(30)
	now := epoch0
	r.LinkUp(p, now)
	r.LinkUp(x, now)
	r.Apply(p, &Neighbors{Links: []NeighborLink{{ID: x}}})
	r.SetOnDemand([]nodeid.ID{x})
	r.LinkFailed(x, now)
	// p has not noticed: it still lists x, and the rendezvous too.
	r.Learn(x, now.Add(time.Second))
	if slices.Contains(r.Known(now.Add(time.Second)), x) {
		t.Fatal("a held-down node must stay out whatever lists it")
	}
	if a := r.Tick(now.Add(time.Second)); slices.Contains(a.Connect, x) {
		t.Fatalf("Tick asks for held-down %s: %+v", x.Short(), a)
	}
	// The hold ends: p still lists x, so x is alive and back at once.
	end := now.Add(20 * time.Second)
	if !slices.Contains(r.Known(end), x) || !slices.Contains(r.Tick(end).Connect, x) {
		t.Fatal("after the hold-down x must be known and asked for again")
	}
	// A link coming up ends a hold-down early.
	r.LinkFailed(x, end)
	r.LinkUp(x, end.Add(time.Second))
	if !slices.Contains(r.Links(), x) || !slices.Contains(r.Known(end.Add(time.Second)), x) {
		t.Fatal("LinkUp must end the hold-down")
	}
}

// Desired must depend on what is known, not on how or in which order it
// was learnt.
func TestRingDesiredDeterministic(t *testing.T) {
	rng := newRNG(7)
	self := randID(rng)
	var nodes []nodeid.ID
	// A peer's list counts up to MaxPeerLinks entries (the nearest): as
	// many as that, so that both rings know the same nodes.
	for range MaxPeerLinks + 1 {
		nodes = append(nodes, randID(rng))
	}
	// Both link to the same peer: links are part of the input (sticky
	// chords), so they must be the same too.
	peer := nodes[0]
	a := NewRing(self, RingConfig{Successors: 2, Chords: 3})
	a.LinkUp(peer, epoch0)
	for _, id := range nodes {
		a.Learn(id, epoch0)
	}
	b := NewRing(self, RingConfig{Successors: 2, Chords: 3})
	b.LinkUp(peer, epoch0)
	var m Neighbors
	for _, id := range slices.Backward(nodes[1:]) {
		m.Links = append(m.Links, NeighborLink{ID: id}) // unsorted on purpose
	}
	b.Apply(peer, &m)
	sa, ca := a.Desired(epoch0)
	sb, cb := b.Desired(epoch0)
	if !slices.Equal(sa, sb) || !slices.Equal(ca, cb) || len(ca) != 3 {
		t.Fatalf("learnt vs listed: %v %v / %v %v", shorts(sa), shorts(ca), shorts(sb), shorts(cb))
	}
	s2, c2 := a.Desired(epoch0.Add(time.Second))
	if !slices.Equal(sa, s2) || !slices.Equal(ca, c2) {
		t.Fatal("Desired changed with nothing else changing")
	}
}

// TestApplyBoundsPeerInfluence: a linked peer's Neighbors cannot bring in
// nodes nobody attests, nor more than MaxPeerLinks, so invented IDs next
// to this node do not eclipse its real successor.
func TestApplyBoundsPeerInfluence(t *testing.T) {
	self, peer, real := nodeID(10), nodeID(200), nodeID(20)
	real2 := nodeID(30)
	attested := map[nodeid.ID]bool{peer: true, real: true, real2: true}
	r := NewRing(self, RingConfig{Successors: 1, Attested: func(id nodeid.ID) bool { return attested[id] }})
	now := time.Unix(1000, 0)
	r.Learn(real, now)
	r.LinkUp(peer, now)
	// 300 invented IDs right after self, plus real2.
	var m Neighbors
	for i := range 300 {
		id := self
		id[1], id[2] = byte(i>>8), byte(i)
		id[31] ^= 0x55
		m.Links = append(m.Links, NeighborLink{ID: id})
	}
	m.Links = append(m.Links, NeighborLink{ID: real2})
	slices.SortFunc(m.Links, func(a, b NeighborLink) int { return a.ID.Compare(b.ID) })
	r.Apply(peer, &m)
	succ, _ := r.Desired(now)
	if len(succ) != 1 || succ[0] != real {
		t.Errorf("successor %v, want the real node %s", succ, real.Short())
	}
	if got := len(r.links[peer].lists); got != 1 {
		t.Errorf("kept %d of the peer's links, want only real2", got)
	}
	if got := r.Ignored(); got != 300 {
		t.Errorf("Ignored() = %d, want the 300 invented IDs", got)
	}
	// Without Attested, the list is still cut to the nearest MaxPeerLinks.
	r2 := NewRing(self, RingConfig{Successors: 1})
	r2.LinkUp(peer, now)
	r2.Apply(peer, &m)
	if got := len(r2.links[peer].lists); got != MaxPeerLinks {
		t.Errorf("kept %d links, want %d", got, MaxPeerLinks)
	}
	if got := r2.Ignored(); got != uint64(len(m.Links)-MaxPeerLinks) {
		t.Errorf("Ignored() = %d, want %d", got, len(m.Links)-MaxPeerLinks)
	}
}

// TestRoutesNeedProvenClaims: a peer that claims a link to the node right
// before the destination gets the traffic only when that node proved the
// link (RingConfig.Proven); unproven, the route goes by this node's own
// links, and no relay goes through the claimer.
func TestRoutesNeedProvenClaims(t *testing.T) {
	self, dst := nodeID(10), nodeID(100)
	liar, honest, claimed := nodeID(50), nodeID(90), nodeID(99)
	proven := map[[2]nodeid.ID]bool{}
	for _, cfg := range []RingConfig{{Successors: 2}, {Successors: 2, Proven: func(p, id nodeid.ID) bool { return proven[[2]nodeid.ID{p, id}] }}} {
		r := NewRing(self, cfg)
		now := epoch0
		r.LinkUp(liar, now)
		r.LinkUp(honest, now)
		r.Apply(liar, &Neighbors{Links: []NeighborLink{{ID: claimed}}})
		next, _ := r.Routes(now).NextHop(dst)
		switch {
		case cfg.Proven == nil && next != liar:
			t.Errorf("believing every claim: next hop %s, want the claimer (its link to 99 is nearest)", next.Short())
		case cfg.Proven != nil && next != honest:
			t.Errorf("unproven claim: next hop %s, want %s by this node's own links", next.Short(), honest.Short())
		}
		if cfg.Proven != nil {
			proven[[2]nodeid.ID{liar, claimed}] = true
			r.Reprove()
			if next, _ := r.Routes(now).NextHop(dst); next != liar {
				t.Errorf("proven claim: next hop %s, want the claimer", next.Short())
			}
		}
	}
}

// A held-down node that shows itself alive (Alive: it signed an offer or
// a knock, e.g. after a restart) is back at once, not after the hold.
func TestRingAliveEndsHoldDown(t *testing.T) {
	r := NewRing(nodeID(1), RingConfig{Successors: 2, HoldDown: 30 * time.Second})
	x := nodeID(30)
	now := epoch0
	r.LinkUp(x, now)
	r.LinkFailed(x, now)
	r.Learn(x, now.Add(time.Second))
	if slices.Contains(r.Known(now.Add(time.Second)), x) {
		t.Fatal("x must be held down")
	}
	r.Alive(x)
	if !slices.Contains(r.Known(now.Add(2*time.Second)), x) || !slices.Contains(r.Tick(now.Add(2*time.Second)).Connect, x) {
		t.Fatal("after Alive, x must be known and asked for at once")
	}
}

// A suspect link stays linked (and in the ring) but out of Routes, so
// packets for others go around it; the mark clears, and goes with the link.
func TestRingSuspect(t *testing.T) {
	r := NewRing(nodeID(1), RingConfig{Successors: 2})
	a, b := nodeID(10), nodeID(20)
	now := epoch0
	r.LinkUp(a, now)
	r.LinkUp(b, now)
	r.Suspect(nodeID(99), true) // not linked: nothing
	if got := r.Routes(now).Links(); !slices.Equal(got, []nodeid.ID{a, b}) {
		t.Fatalf("routes %v", got)
	}
	r.Suspect(a, true)
	rt := r.Routes(now)
	if got := rt.Links(); !slices.Equal(got, []nodeid.ID{b}) {
		t.Fatalf("with a suspect: routes %v, want only b", got)
	}
	if next, ok := rt.NextHop(nodeID(12)); !ok || next != b {
		t.Errorf("next hop for a node past a: %s %v, want b", next.Short(), ok)
	}
	if !slices.Contains(r.Known(now), a) {
		t.Error("a suspect left the ring")
	}
	r.Suspect(a, false)
	if got := r.Routes(now).Links(); !slices.Equal(got, []nodeid.ID{a, b}) {
		t.Fatalf("cleared: routes %v", got)
	}
	r.Suspect(a, true)
	r.LinkFailed(a, now)
	r.LinkUp(a, now.Add(time.Second))
	if got := r.Routes(now.Add(time.Second)).Links(); !slices.Equal(got, []nodeid.ID{a, b}) {
		t.Errorf("a new link to a suspect node: routes %v, want both", got)
	}
}
