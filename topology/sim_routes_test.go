package topology

import (
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Measurements on a settled simulated overlay: link counts, routing hops
// for random pairs, and what a membership delta costs to reach every node
// by the ring broadcast (Fanout) versus flooding it over every link.

const (
	simPairs   = 20000
	simSources = 50
)

func (s *sim) measureRoutes(t *testing.T, rep *simReport) {
	t.Helper()
	up := s.upNodes()
	deg := 0
	for _, n := range up {
		deg += len(n.links)
		rep.degMax = max(rep.degMax, len(n.links))
	}
	rep.degMean = float64(deg) / float64(len(up))

	var sum, sumGreedy, sumCW, pairs int
	for range simPairs {
		a, b := up[s.rng.IntN(len(up))], up[s.rng.IntN(len(up))]
		if a == b {
			continue
		}
		h, ok := s.route(a, b.id)
		if !ok || h > HopLimit {
			t.Fatalf("route %s → %s: arrived %v after %d hops", a.id.Short(), b.id.Short(), ok, h)
		}
		hg, hc := s.hopsGreedy(a, b.id), s.hopsCW(a, b.id)
		sum, sumGreedy, sumCW, pairs = sum+h, sumGreedy+hg, sumCW+hc, pairs+1
		rep.hopsMax, rep.greedyMax, rep.cwMax = max(rep.hopsMax, h), max(rep.greedyMax, hg), max(rep.cwMax, hc)
	}
	rep.hopsMean = float64(sum) / float64(pairs)
	rep.greedyMean = float64(sumGreedy) / float64(pairs)
	rep.cwMean = float64(sumCW) / float64(pairs)

	var depthSum, depths, floodSum int
	for range simSources {
		src := up[s.rng.IntN(len(up))]
		for _, d := range s.floodDepths(src) {
			floodSum += d
			rep.floodMax = max(rep.floodMax, d)
		}
		got := s.broadcast(src)
		for _, n := range up {
			d, ok := got[n.id]
			switch {
			case n == src && ok, n != src && !ok:
				t.Fatalf("broadcast from %s: node %s got it %v", src.id.Short(), n.id.Short(), ok)
			case n != src:
				depthSum, depths = depthSum+d, depths+1
				rep.bcastMax = max(rep.bcastMax, d)
			}
		}
	}
	rep.bcastMean = float64(depthSum) / float64(depths)
	rep.floodMean = float64(floodSum) / float64(depths)
	// Flooding sends on every link but the one it came in on: the
	// originator deg(src) copies, every other node deg-1, 2E-(n-1) in all.
	rep.floodMsgs = deg - (len(up) - 1)
}

// broadcast delivers one broadcast from src by Fanout and returns the
// depth at which each node got it; it fails the test on a duplicate.
func (s *sim) broadcast(src *simNode) map[nodeid.ID]int {
	type copy struct {
		to    *simNode
		limit nodeid.ID
		depth int
	}
	got := make(map[nodeid.ID]int)
	var queue []copy
	var scratch []Branch
	for _, b := range Fanout(src.id, src.id, src.links, scratch[:0]) {
		queue = append(queue, copy{s.byID[b.To], b.Limit, 1})
	}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if _, dup := got[c.to.id]; dup {
			s.t.Fatalf("broadcast from %s: %s got it twice", src.id.Short(), c.to.id.Short())
		}
		got[c.to.id] = c.depth
		scratch = Fanout(c.to.id, c.limit, c.to.links, scratch[:0])
		for _, b := range scratch {
			queue = append(queue, copy{s.byID[b.To], b.Limit, c.depth + 1})
		}
	}
	return got
}

// floodDepths returns the hops at which a flood from src (every node
// sends on every link but the one it came in on, once) reaches each other
// node: the shortest paths, a breadth-first search.
func (s *sim) floodDepths(src *simNode) map[nodeid.ID]int {
	depth := map[nodeid.ID]int{src.id: 0}
	queue := []*simNode{src}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, l := range n.links {
			if _, seen := depth[l]; !seen {
				depth[l] = depth[n.id] + 1
				queue = append(queue, s.byID[l])
			}
		}
	}
	delete(depth, src.id)
	return depth
}

// hopsGreedy walks the plain greedy rule (NextHop, no lookahead), for
// comparison.
func (s *sim) hopsGreedy(src *simNode, dst nodeid.ID) int {
	n := src
	for hops := 0; ; hops++ {
		if n.id == dst {
			return hops
		}
		next, ok := NextHop(n.id, dst, n.links)
		if !ok {
			s.t.Fatalf("greedy route %s → %s stuck at %s", src.id.Short(), dst.Short(), n.id.Short())
		}
		n = s.byID[next]
	}
}

// hopsCW walks the clockwise-only greedy rule, for comparison: each hop
// goes to the link that most reduces the clockwise distance to dst
// without passing it (Chord's closest preceding node).
func (s *sim) hopsCW(src *simNode, dst nodeid.ID) int {
	n, t := src, load(dst)
	for hops := 0; ; hops++ {
		if n.id == dst {
			return hops
		}
		best, next := cw(load(n.id), t), n
		for _, l := range n.links {
			if d := cw(load(l), t); d.cmp(best) < 0 {
				best, next = d, s.byID[l]
			}
		}
		if next == n {
			s.t.Fatalf("clockwise route %s → %s stuck at %s", src.id.Short(), dst.Short(), n.id.Short())
		}
		n = next
	}
}
