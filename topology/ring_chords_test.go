package topology

import (
	"math/big"
	"math/bits"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// naiveDesired recomputes Desired from its definition, with big integers
// and linear scans: the successors are the k nodes at the smallest
// clockwise distance from self; each draw's target t = self + d takes the
// nearest sticky node (a linked chord chosen before) at or after t if it
// is at most d/2 past t, else the nearest known or linked one, unless that
// one is a successor or already chosen.
func naiveDesired(self nodeid.ID, k, c int, known, linked, sticky []nodeid.ID) (succ, chords []nodeid.ID) {
	all := slices.Clone(known)
	all = append(all, linked...)
	slices.SortFunc(all, func(a, b nodeid.ID) int { return bigCW(self, a).Cmp(bigCW(self, b)) })
	all = slices.Compact(all)
	succ = all[:min(k, len(all))]
	nearest := func(t nodeid.ID, from []nodeid.ID) (nodeid.ID, *big.Int) {
		var best nodeid.ID
		var bd *big.Int
		for _, id := range from {
			if d := bigCW(t, id); bd == nil || d.Cmp(bd) < 0 {
				best, bd = id, d
			}
		}
		return best, bd
	}
	for _, d := range newDraws(self, c) {
		if len(chords) == c || len(all) <= len(succ) {
			break
		}
		dist := bigOf(d.id())
		t := idOf(new(big.Int).Add(bigOf(self), dist))
		usable := func(id nodeid.ID) bool { return !slices.Contains(succ, id) && !slices.Contains(chords, id) }
		half := new(big.Int).Rsh(dist, 1)
		if l, ld := nearest(t, sticky); ld != nil && ld.Cmp(half) <= 0 && usable(l) {
			chords = append(chords, l)
		} else if s, _ := nearest(t, all); usable(s) {
			chords = append(chords, s)
		}
	}
	slices.SortFunc(chords, func(a, b nodeid.ID) int { return bigCW(self, a).Cmp(bigCW(self, b)) })
	return succ, chords
}

func TestRingDesiredModel(t *testing.T) {
	rng := newRNG(3)
	for trial := range 300 {
		self := randID(rng)
		k, c := 1+rng.IntN(4), rng.IntN(6)
		var known, linked []nodeid.ID
		for range rng.IntN(200) {
			id := randID(rng)
			if rng.IntN(5) == 0 {
				linked = append(linked, id)
			} else {
				known = append(known, id)
			}
		}
		r := NewRing(self, RingConfig{Successors: k, Chords: c})
		for _, id := range known {
			r.Learn(id, epoch0)
		}
		for _, id := range linked {
			r.LinkUp(id, epoch0)
		}
		// Links made before any chord was chosen are not sticky.
		succ, chords := r.Desired(epoch0)
		ws, wc := naiveDesired(self, k, c, known, linked, nil)
		if !slices.Equal(succ, ws) || !slices.Equal(chords, wc) {
			t.Fatalf("trial %d (k=%d c=%d, %d known, %d linked): got %v %v, want %v %v", trial, k, c,
				len(known), len(linked), shorts(succ), shorts(chords), shorts(ws), shorts(wc))
		}
	}
}

// fullRing returns a ring for self that knows nodes and links to what it
// desires, as a settled node does.
func fullRing(self nodeid.ID, nodes []nodeid.ID, k, c int) *Ring {
	r := NewRing(self, RingConfig{Successors: k, Chords: c})
	for _, id := range nodes {
		r.Learn(id, epoch0)
	}
	succ, chords := r.Desired(epoch0)
	for _, id := range append(succ, chords...) {
		r.LinkUp(id, epoch0)
	}
	return r
}

// A join far from a node changes its chords only by taking one over (the
// joiner landing between a target and the chord), and rarely.
func TestRingChordsStableOnFarJoin(t *testing.T) {
	rng := newRNG(11)
	var nodes []nodeid.ID
	for range 300 {
		nodes = append(nodes, randID(rng))
	}
	const joins = 300
	moved := 0
	for i := range 20 {
		self := nodes[i]
		r := fullRing(self, nodes, 2, 3)
		succ0, chords0 := r.Desired(epoch0)
		for range joins / 20 {
			j := randID(rng)
			r.Learn(j, epoch0)
			succ, chords := r.Desired(epoch0)
			r.Forget(j)
			if !slices.Equal(succ, succ0) {
				continue // a near join: anything may move
			}
			if !slices.Equal(chords, chords0) {
				if !slices.Contains(chords, j) {
					t.Fatalf("far join %s moved chords %v → %v without taking one", j.Short(), shorts(chords0), shorts(chords))
				}
				moved++
			}
		}
	}
	if moved > joins*3/100 {
		t.Errorf("%d of %d far joins moved a chord; want under 3%%", moved, joins)
	}
}

// Losing knowledge (the rendezvous gone, leases running out) never moves
// a linked successor or chord: they are still known, and nothing can
// appear between a target and its chord by knowing less.
func TestRingChordsKeepWhenKnowledgeShrinks(t *testing.T) {
	rng := newRNG(5)
	var nodes []nodeid.ID
	for range 500 {
		nodes = append(nodes, randID(rng))
	}
	for i := range 30 {
		r := fullRing(nodes[i], nodes, 2, 4)
		succ0, chords0 := r.Desired(epoch0)
		for _, id := range nodes {
			if rng.IntN(10) > 0 { // forget most, keep a random tenth
				r.Forget(id)
			}
		}
		succ, chords := r.Desired(epoch0.Add(time.Second))
		if !slices.Equal(succ, succ0) || !slices.Equal(chords, chords0) {
			t.Fatalf("node %d: %v %v became %v %v", i, shorts(succ0), shorts(chords0), shorts(succ), shorts(chords))
		}
	}
}

// When knowledge grows (the rendezvous back after an outage, a node
// that knew its two-hop neighbourhood learning everyone), linked chords
// mostly stay: without stickiness 95% of them move here, with it about
// half, the ones that were far past their targets.
func TestRingChordsStickyWhenKnowledgeGrows(t *testing.T) {
	rng := newRNG(5)
	var nodes []nodeid.ID
	for range 500 {
		nodes = append(nodes, randID(rng))
	}
	moved, total := 0, 0
	for i := range 100 {
		var some []nodeid.ID
		for _, id := range nodes {
			if rng.IntN(10) == 0 {
				some = append(some, id)
			}
		}
		r := fullRing(nodes[i], some, 2, 2)
		_, before := r.Desired(epoch0)
		for _, id := range nodes {
			r.Learn(id, epoch0)
		}
		_, after := r.Desired(epoch0)
		for _, c := range before {
			total++
			if !slices.Contains(after, c) {
				moved++
			}
		}
	}
	if moved > total*65/100 {
		t.Errorf("%d of %d linked chords moved when knowledge grew tenfold; want under 65%%", moved, total)
	}
}

// Chord distances are harmonic: as many chords span each octave of the
// ring (1/2..1, 1/4..1/2, …) down to about successors/n.
func TestRingChordsHarmonic(t *testing.T) {
	rng := newRNG(9)
	const n, k, c, selves = 2048, 2, 4, 200
	var nodes []nodeid.ID
	for range n {
		nodes = append(nodes, randID(rng))
	}
	var octaves [12]int
	for i := range selves {
		r := NewRing(nodes[i], RingConfig{Successors: k, Chords: c})
		for _, id := range nodes {
			r.Learn(id, epoch0)
		}
		_, chords := r.Desired(epoch0)
		if len(chords) != c {
			t.Fatalf("node %d: %d chords, want %d", i, len(chords), c)
		}
		for _, ch := range chords {
			d := cw(load(nodes[i]), load(ch))
			octaves[min(bits.LeadingZeros64(d[0]), len(octaves)-1)]++
		}
	}
	// log2(n/k) = 10 octaves; the last is only partly usable.
	per := float64(selves*c) / 10
	for j := range 9 {
		if got := float64(octaves[j]); got < per/2 || got > per*1.6 {
			t.Errorf("octave %d (1/%d of the ring): %d chords, want about %.0f; all %v", j, 1<<(j+1), octaves[j], per, octaves)
		}
	}
}

func TestRingDrawsFixedPerNode(t *testing.T) {
	a, b := newDraws(nodeID(1), 3), newDraws(nodeID(1), 3)
	if !slices.Equal(a, b) || slices.Equal(a, newDraws(nodeID(2), 3)) || len(newDraws(nodeID(1), 0)) != 0 {
		t.Fatal("draws must be a function of the node ID alone")
	}
	for _, d := range a {
		if d == (u256{}) || d[1]|d[2]|d[3] != 0 {
			t.Fatalf("draw %x: want a non-zero distance in the top word", d)
		}
	}
}
