package topology

import (
	"math/big"
	"slices"
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// naiveNextHop is NextHop from its definition with big integers: of the
// links other than self strictly nearer dst than self on the ring, the
// nearest; of two equally near, the one at or after dst.
func naiveNextHop(self, dst nodeid.ID, links []nodeid.ID) (nodeid.ID, bool) {
	dist := func(x nodeid.ID) *big.Int {
		a, b := bigCW(x, dst), bigCW(dst, x)
		if b.Cmp(a) < 0 {
			return b
		}
		return a
	}
	var best nodeid.ID
	bd := dist(self)
	found := false
	for _, l := range links {
		if l == self {
			continue
		}
		d := dist(l)
		c := d.Cmp(bd)
		if c < 0 || c == 0 && found && bigCW(dst, l).Cmp(d) == 0 {
			best, bd, found = l, d, true
		}
	}
	return best, found
}

func TestNextHopModel(t *testing.T) {
	rng := newRNG(21)
	for range 3000 {
		pool := make([]nodeid.ID, 2+rng.IntN(30))
		for i := range pool {
			pool[i] = randID(rng)
		}
		self, dst := pool[0], pool[rng.IntN(len(pool))]
		if rng.IntN(4) == 0 {
			dst = randID(rng) // a point, not a node: routing still has an answer
		}
		var links []nodeid.ID
		for range rng.IntN(12) {
			links = append(links, pool[rng.IntN(len(pool))]) // may hold self, dst, duplicates
		}
		got, ok := NextHop(self, dst, links)
		want, wok := naiveNextHop(self, dst, links)
		if got != want || ok != wok {
			t.Fatalf("NextHop(%s → %s, %v) = %s %v, want %s %v", self.Short(), dst.Short(), shorts(links),
				got.Short(), ok, want.Short(), wok)
		}
	}
}

func TestNextHopTie(t *testing.T) {
	// dst at 0x40…, links 0x30… and 0x50… equally near: the one after dst,
	// whatever the order of links.
	self, dst := nodeid.ID{0: 0x80}, nodeid.ID{0: 0x40}
	before, after := nodeid.ID{0: 0x30}, nodeid.ID{0: 0x50}
	for _, links := range [][]nodeid.ID{{before, after}, {after, before}} {
		if got, ok := NextHop(self, dst, links); !ok || got != after {
			t.Fatalf("tie over %v: %s %v, want %s", shorts(links), got.Short(), ok, after.Short())
		}
	}
	if _, ok := NextHop(dst, dst, []nodeid.ID{before, after}); ok {
		t.Fatal("NextHop toward self must find nothing")
	}
}

// naiveLookahead is Routes.NextHop from its definition: of the links
// strictly nearer dst than self, the one with the smallest score (its own
// distance or its nearest link's), then the nearer, then the one at or
// after dst.
func naiveLookahead(self, dst nodeid.ID, links []nodeid.ID, theirs [][]nodeid.ID) (nodeid.ID, bool) {
	dist := func(x nodeid.ID) *big.Int {
		a, b := bigCW(x, dst), bigCW(dst, x)
		if b.Cmp(a) < 0 {
			return b
		}
		return a
	}
	limit := dist(self)
	var best nodeid.ID
	var bs, bd *big.Int
	for i, l := range links {
		d := dist(l)
		if l == self || d.Cmp(limit) >= 0 {
			continue
		}
		score := d
		if i < len(theirs) {
			for _, z := range theirs[i] {
				if dz := dist(z); z != self && dz.Cmp(score) < 0 {
					score = dz
				}
			}
		}
		c := 0
		if bs != nil {
			c = score.Cmp(bs)
			if c == 0 {
				c = d.Cmp(bd)
			}
			if c == 0 && bigCW(dst, l).Cmp(d) == 0 {
				c = -1
			}
		}
		if bs == nil || c < 0 {
			best, bs, bd = l, score, d
		}
	}
	return best, bs != nil
}

func TestRoutesNextHopModel(t *testing.T) {
	rng := newRNG(23)
	for range 3000 {
		pool := make([]nodeid.ID, 2+rng.IntN(30))
		for i := range pool {
			pool[i] = randID(rng)
		}
		self, dst := pool[0], pool[rng.IntN(len(pool))]
		if rng.IntN(4) == 0 {
			dst = randID(rng)
		}
		var links []nodeid.ID
		for range rng.IntN(12) {
			if l := pool[rng.IntN(len(pool))]; !slices.Contains(links, l) {
				links = append(links, l)
			}
		}
		theirs := make([][]nodeid.ID, rng.IntN(len(links)+1))
		for i := range theirs {
			for range rng.IntN(6) {
				theirs[i] = append(theirs[i], pool[rng.IntN(len(pool))])
			}
		}
		got, ok := NewRoutes(self, links, theirs).NextHop(dst)
		want, wok := naiveLookahead(self, dst, links, theirs)
		if got != want || ok != wok {
			t.Fatalf("NextHop(%s → %s, %v) = %s %v, want %s %v", self.Short(), dst.Short(), shorts(links),
				got.Short(), ok, want.Short(), wok)
		}
	}
}

func TestRoutesForward(t *testing.T) {
	a, b, c, d := nodeID(10), nodeID(20), nodeID(30), nodeID(40)
	tests := []struct {
		name  string
		h     Route
		self  nodeid.ID
		links []nodeid.ID
		next  nodeid.ID
		v     Verdict
		ttl   uint8
	}{
		{"for me, even on the last hop", Route{Src: a, Dst: c, TTL: 1}, c, nil, nodeid.ID{}, Deliver, 1},
		{"forward, one hop fewer", Route{Src: a, Dst: d, TTL: 5}, b, []nodeid.ID{a, c}, c, Forward, 4},
		{"straight to a linked destination", Route{Src: a, Dst: d, TTL: 5}, b, []nodeid.ID{c, d}, d, Forward, 4},
		{"last hop spent", Route{Src: a, Dst: d, TTL: 1}, b, []nodeid.ID{c, d}, nodeid.ID{}, Expired, 1},
		{"nothing nearer", Route{Src: a, Dst: c, TTL: 5}, b, []nodeid.ID{a}, nodeid.ID{}, NoRoute, 5},
	}
	for _, tc := range tests {
		h := tc.h
		next, v := NewRoutes(tc.self, tc.links, nil).Forward(&h)
		if next != tc.next || v != tc.v || h.TTL != tc.ttl {
			t.Errorf("%s: %s %v ttl %d; want %s %v ttl %d", tc.name, next.Short(), v, h.TTL, tc.next.Short(), tc.v, tc.ttl)
		}
	}
}

// Lookahead picks the link whose own link comes nearest, but only among
// links that are nearer themselves.
func TestRoutesLookahead(t *testing.T) {
	self, dst := nodeID(10), nodeID(100)
	near, far, behind := nodeID(90), nodeID(50), nodeID(5)
	rt := NewRoutes(self, []nodeid.ID{near, far, behind}, [][]nodeid.ID{nil, {nodeID(99)}, {dst}})
	if got, _ := rt.NextHop(dst); got != far {
		t.Fatalf("NextHop = %s, want %s (its link 99 is nearest)", got.Short(), far.Short())
	}
	if got, _ := NextHop(self, dst, rt.Links()); got != near {
		t.Fatalf("plain NextHop = %s, want %s", got.Short(), near.Short())
	}
	if !rt.Linked(near) || rt.Linked(dst) || rt.Self() != self {
		t.Fatal("Linked or Self wrong")
	}
}

// The per-packet functions do not allocate.
func TestRouteAllocs(t *testing.T) {
	rng := newRNG(61)
	links := make([]nodeid.ID, 16)
	for i := range links {
		links[i] = randID(rng)
	}
	self, dst := randID(rng), randID(rng)
	buf := make([]byte, 0, 2048)
	branches := make([]Branch, 0, len(links))
	theirs := make([][]nodeid.ID, len(links))
	for i := range theirs {
		theirs[i] = links[:8]
	}
	rt := NewRoutes(self, links, theirs)
	h := Route{Src: self, Dst: dst, TTL: HopLimit}
	pkt, _ := h.AppendBinary(nil)
	allocs := testing.AllocsPerRun(100, func() {
		NextHop(self, dst, links)
		rt.NextHop(dst)
		rt.Linked(dst)
		h2 := h
		rt.Forward(&h2)
		buf, _ = h.AppendBinary(buf[:0])
		ParseRoute(pkt)
		branches = Fanout(self, self, links, branches[:0])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

// TestRelay: a node whose links all lead away from dst (a hole in the
// ring: its successor left, and its only other links are behind it)
// cannot route greedily, but reaches dst through a linked node that
// announced a link to it; that node then delivers over its own link or
// drops, never routes on.
func TestRelay(t *testing.T) {
	// Ring order: a < b < self < (gone) < dst. self links a and b only;
	// b announced a link to dst.
	a, b, self, dst := nodeID(0x10), nodeID(0x20), nodeID(0x30), nodeID(0x50)
	other := nodeID(0x60)
	rt := NewRoutes(self, []nodeid.ID{a, b}, [][]nodeid.ID{{other}, {dst}})
	if _, ok := rt.NextHop(dst); ok {
		t.Fatal("a link is nearer dst: the setup is wrong")
	}
	next, relay, ok := rt.Route(dst)
	if !ok || !relay || next != b {
		t.Fatalf("Route(dst) = %s, relay %v, %v; want b as relay", next.Short(), relay, ok)
	}
	if _, ok := rt.Relay(other); !ok {
		t.Error("a's announced link not used")
	}
	if _, ok := rt.Relay(nodeID(0x70)); ok {
		t.Error("relay to a node nobody links")
	}
	if _, ok := rt.Relay(b); ok {
		t.Error("relay to a linked node")
	}
	// At b: the relayed packet goes to dst over b's link, with the flag.
	h := Route{Src: self, Dst: dst, TTL: 5, Relay: true}
	atB := NewRoutes(b, []nodeid.ID{self, dst}, nil)
	if nx, v := atB.Forward(&h); v != Forward || nx != dst || h.TTL != 4 || !h.Relay {
		t.Errorf("at b: %s %v %+v", nx.Short(), v, h)
	}
	// A relay without the link drops it, even if routing could go on.
	h = Route{Src: self, Dst: dst, TTL: 5, Relay: true}
	if _, v := NewRoutes(b, []nodeid.ID{self, nodeID(0x48)}, nil).Forward(&h); v != NoRoute {
		t.Errorf("relay without a link to dst: %v", v)
	}
	// A packet stuck mid-way is relayed there.
	h = Route{Src: a, Dst: dst, TTL: 5}
	if nx, v := rt.Forward(&h); v != Forward || nx != b || !h.Relay {
		t.Errorf("stuck mid-way: %s %v %+v", nx.Short(), v, h)
	}
}
