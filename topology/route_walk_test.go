package topology

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Routes walked end to end on random rings: they arrive when the
// successor links are there, they never loop whatever the links and the
// lookahead lists are, and a Fanout broadcast reaches each node once.

// randomRing returns n random IDs, ascending, with each node's links: its
// successor and predecessor and extra random links, both ways.
func randomRing(rng *rand.Rand, n, extra int) ([]nodeid.ID, map[nodeid.ID][]nodeid.ID) {
	nodes := make([]nodeid.ID, n)
	for i := range nodes {
		nodes[i] = randID(rng)
	}
	slices.SortFunc(nodes, nodeid.ID.Compare)
	set := make(map[nodeid.ID]map[nodeid.ID]bool)
	link := func(a, b nodeid.ID) {
		if a == b {
			return
		}
		for _, e := range [][2]nodeid.ID{{a, b}, {b, a}} {
			if set[e[0]] == nil {
				set[e[0]] = make(map[nodeid.ID]bool)
			}
			set[e[0]][e[1]] = true
		}
	}
	for i, id := range nodes {
		link(id, nodes[(i+1)%n])
		for range rng.IntN(extra + 1) {
			link(id, nodes[rng.IntN(n)])
		}
	}
	links := make(map[nodeid.ID][]nodeid.ID)
	for id, s := range set {
		for l := range s {
			links[id] = append(links[id], l)
		}
		slices.SortFunc(links[id], nodeid.ID.Compare)
	}
	return nodes, links
}

// routesOf builds every node's Routes from the links; lists gives each
// node's idea of its links' links (the truth, or not).
func routesOf(links map[nodeid.ID][]nodeid.ID, lists func(of nodeid.ID) []nodeid.ID) map[nodeid.ID]*Routes {
	rts := make(map[nodeid.ID]*Routes)
	for id, ls := range links {
		theirs := make([][]nodeid.ID, len(ls))
		for i, l := range ls {
			theirs[i] = lists(l)
		}
		rts[id] = NewRoutes(id, ls, theirs)
	}
	return rts
}

// walk routes from src to dst and checks, hop by hop, that the ring
// distance to dst strictly falls and no node comes twice. The one
// exception is a relay hop (Route.Relay: no link was nearer), which may
// go anywhere but must be followed by dst itself or nothing.
func walk(t *testing.T, src, dst nodeid.ID, rts map[nodeid.ID]*Routes) (hops int, v Verdict) {
	t.Helper()
	rt := rts[src]
	if rt == nil {
		rt = NewRoutes(src, nil, nil)
	}
	next, relay, ok := rt.Route(dst)
	if !ok {
		return 0, NoRoute
	}
	seen := map[nodeid.ID]bool{src: true}
	h := Route{Src: src, Dst: dst, TTL: HopLimit, Relay: relay}
	prev := ringDist(load(src), load(dst))
	relayed := false
	for hops = 1; ; hops++ {
		// A relay may lead back to a node the packet passed (lookahead
		// lists can be wrong): harmless, it goes only to dst from there.
		if seen[next] && !(h.Relay && !relayed) {
			t.Fatalf("%s → %s: loop at %s after %d hops", src.Short(), dst.Short(), next.Short(), hops)
		}
		seen[next] = true
		switch d := ringDist(load(next), load(dst)); {
		case relayed && next != dst:
			t.Fatalf("%s → %s: hop %d after a relay went to %s, not to dst", src.Short(), dst.Short(), hops, next.Short())
		case h.Relay && !relayed:
			relayed = true // the detour: any linked node that links dst
		case d.cmp(prev) >= 0:
			t.Fatalf("%s → %s: hop %d to %s is not nearer", src.Short(), dst.Short(), hops, next.Short())
		default:
			prev = d
		}
		rt := rts[next]
		if rt == nil {
			rt = NewRoutes(next, nil, nil)
		}
		if next, v = rt.Forward(&h); v != Forward {
			return hops, v
		}
	}
}

// With the successor ring in place, every route arrives, within HopLimit.
func TestRouteArrives(t *testing.T) {
	rng := newRNG(31)
	for trial := range 60 {
		// At most 64 nodes, so that even the worst walk fits HopLimit: the
		// distance falls at each hop, so a route takes at most n-1 hops,
		// and on a bare ring with uneven spacing it can take more than n/2
		// (the shorter way in IDs may hold most of the nodes).
		n := 2 + rng.IntN(63)
		nodes, links := randomRing(rng, n, rng.IntN(3))
		rts := routesOf(links, func(of nodeid.ID) []nodeid.ID { return links[of] })
		for range 200 {
			src, dst := nodes[rng.IntN(n)], nodes[rng.IntN(n)]
			if src == dst {
				continue
			}
			if hops, v := walk(t, src, dst, rts); v != Deliver || hops > HopLimit || hops > n-1 {
				t.Fatalf("trial %d (n=%d): %s → %s: %v after %d hops", trial, n, src.Short(), dst.Short(), v, hops)
			}
		}
	}
}

// Whatever the links, even one-way and unrelated from node to node (views
// that disagree during churn), and whatever the lookahead lists say (here
// random: stale or plain wrong), a route never loops and always ends.
func TestRouteNeverLoops(t *testing.T) {
	rng := newRNG(41)
	for range 200 {
		n := 2 + rng.IntN(60)
		nodes := make([]nodeid.ID, n)
		for i := range nodes {
			nodes[i] = randID(rng)
		}
		links := make(map[nodeid.ID][]nodeid.ID)
		for _, id := range nodes {
			for range rng.IntN(6) {
				links[id] = append(links[id], nodes[rng.IntN(n)])
			}
		}
		rts := routesOf(links, func(nodeid.ID) []nodeid.ID {
			var l []nodeid.ID
			for range rng.IntN(5) {
				l = append(l, nodes[rng.IntN(n)])
			}
			return l
		})
		for range 100 {
			src, dst := nodes[rng.IntN(n)], nodes[rng.IntN(n)]
			if rng.IntN(3) == 0 {
				dst = randID(rng) // nobody's ID: must end in NoRoute
			}
			if src == dst {
				continue
			}
			if _, v := walk(t, src, dst, rts); v != Deliver && v != NoRoute {
				t.Fatalf("%s → %s ended %v", src.Short(), dst.Short(), v)
			}
		}
	}
}

// A broadcast by Fanout reaches every node exactly once, from any origin,
// on rings with the successor links and random chords.
func TestFanout(t *testing.T) {
	rng := newRNG(51)
	for range 100 {
		n := 1 + rng.IntN(200)
		nodes, links := randomRing(rng, n, rng.IntN(4))
		src := nodes[rng.IntN(n)]
		got := map[nodeid.ID]int{}
		type copy struct{ to, limit nodeid.ID }
		queue := []copy{{src, src}}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			got[c.to]++
			for _, b := range Fanout(c.to, c.limit, append(links[c.to], c.to), nil) {
				queue = append(queue, copy{b.To, b.Limit})
			}
		}
		for _, id := range nodes {
			if got[id] != 1 {
				t.Fatalf("n=%d from %s: %s got it %d times", n, src.Short(), id.Short(), got[id])
			}
		}
	}
}

func TestFanoutArc(t *testing.T) {
	links := ids(40, 250, 20, 90, 60, 60)
	got := Fanout(nodeID(50), nodeID(10), links, nil) // the arc (50, 10) wraps
	want := []Branch{{To: nodeID(60), Limit: nodeID(90)}, {To: nodeID(90), Limit: nodeID(250)}, {To: nodeID(250), Limit: nodeID(10)}}
	if !slices.Equal(got, want) {
		t.Fatalf("Fanout = %v, want %v", got, want)
	}
	if got := Fanout(nodeID(50), nodeID(60), links, nil); len(got) != 0 {
		t.Fatalf("nothing lies in (50, 60): %v", got)
	}
}

// A node that cannot link its successors still covers its own arc: the
// nodes in it that a linked node announced get their copies through that
// node, each covering up to the next; nodes nobody announced cannot be
// helped, and linked or self are never relayed to.
func TestFanoutCoversOwnArcThroughRelays(t *testing.T) {
	self := nodeID(50)
	rt := NewRoutes(self, ids(90, 200), [][]nodeid.ID{ids(70, 60, 50, 200), ids(60, 10)})
	got := rt.Fanout(self, nil)
	want := []Branch{
		{To: nodeID(90), Limit: nodeID(200)}, {To: nodeID(200), Limit: self},
		{To: nodeID(60), Limit: nodeID(70), Via: nodeID(90)}, {To: nodeID(70), Limit: nodeID(90), Via: nodeID(90)},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Fanout = %v\nwant     %v", got, want)
	}
	// Within a received arc (50, 65): only 60, up to the arc's end.
	if got := rt.Fanout(nodeID(65), nil); !slices.Equal(got, []Branch{{To: nodeID(60), Limit: nodeID(65), Via: nodeID(90)}}) {
		t.Fatalf("Fanout in (50, 65) = %v", got)
	}
	// Linked successor: nothing to relay.
	if got := NewRoutes(self, ids(60, 90), [][]nodeid.ID{nil, ids(70)}).Fanout(self, nil); len(got) != 2 || !got[0].Via.IsZero() || !got[1].Via.IsZero() {
		t.Fatalf("with the successor linked: %v", got)
	}
}
