package topology

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Chords are Symphony's long-distance links (Manku, Bawa, Raghavan 2003):
// a node at self links to the node owning self + x·2^256, where the ring
// fraction x has the harmonic density 1/(x ln n) on [1/n, 1]. With k such
// links greedy routing takes O(log² n / k) hops, and the links need no
// structure kept in step with other nodes, unlike Chord's fingers.
//
// Drawing x = 2^-v with v uniform on [0, log2 n] gives that density, but
// needs n, which a node only estimates, and every change of the estimate
// would move every target. Instead v is drawn uniform on [0, chordSpan]
// from a sequence fixed by the node's ID, and a draw is used only if its
// target lands beyond the successors (and not on a node already chosen).
// The first Chords usable draws are the chords. A target closer than the
// Successors-th successor, about Successors/n of the ring, is one that
// Symphony would not have drawn (or would have wasted on a successor), so
// the usable draws are harmonic on [Successors/n, 1] with no estimate of
// n at all. What makes a chord change:
//
//   - the successor set changes (a join or leave next to this node), which
//     can turn a skipped draw usable or a usable one skipped;
//   - a node becomes known between a target and the chord it snapped to,
//     which takes over as the first node at or after the target.
//
// The second would churn chords on every far join while knowledge grows
// (the rendezvous coming back after an outage, a new node's knowledge
// growing as it settles in). So a chord that is linked is sticky: if the
// first linked node after a target is within half the target distance
// past it, the chord stays there even when a node nearer the target
// becomes known. A chord then spans up to 1.5 times its target distance,
// less than an octave, which the harmonic density hardly notices (routing
// cost depends on log x; TestSimulate's hops did not change measurably
// between a slack of a quarter and a whole), and every link reused is one
// not set up. Knowing
// less never moves a linked chord: nothing can appear between a target
// and its chord by forgetting. Only links chosen as chords are sticky: a
// link made for traffic (on-demand, by either end) never becomes a chord
// by being there.

// chordSpan bounds the draws: targets are at least 2^-32 of the ring
// away, so chords stay harmonic for networks of up to 2^32 nodes.
const chordSpan = 32

// drawsPerChord bounds the work per chord. A draw is usable with
// probability about log2(n/Successors)/chordSpan; 32 draws per chord give
// a full set for any n above 16, and small rings need few chords anyway.
const drawsPerChord = 32

// newDraws returns the fixed sequence of chord target distances of node
// self: PCG seeded by the ID (itself a hash), so a restarted node picks
// the same chords again. Only the generator's raw output is used (not
// rand.Float64) so the sequence depends on no library algorithm but PCG's.
func newDraws(self nodeid.ID, chords int) []u256 {
	if chords <= 0 {
		return nil
	}
	rng := rand.NewPCG(binary.BigEndian.Uint64(self[0:]), binary.BigEndian.Uint64(self[8:]))
	draws := make([]u256, drawsPerChord*(chords+1))
	for i := range draws {
		u := float64(rng.Uint64()>>11) / (1 << 53) // [0, 1)
		v := chordSpan * (1 - u)                   // (0, chordSpan]
		// The distance 2^-v of the ring, as a 64-bit fraction in the
		// top word: 2^(64-v), which rounding could push to 2^64.
		f := math.Exp2(64 - v)
		top := uint64(math.MaxUint64)
		if f < 1<<64 {
			top = uint64(f)
		}
		draws[i] = u256{top, 0, 0, 0}
	}
	return draws
}

// pickChords appends the chords for the current nodes, linked and
// succ, in ring order.
func (r *Ring) pickChords(dst []nodeid.ID) []nodeid.ID {
	if r.cfg.Chords == 0 || len(r.nodes) <= len(r.succ) {
		return dst
	}
	start := len(dst)
	for _, d := range r.draws {
		if len(dst)-start == r.cfg.Chords {
			break
		}
		if c, ok := r.chordFor(d, dst[start:]); ok {
			dst = append(dst, c)
		}
	}
	slices.SortFunc(dst[start:], func(a, b nodeid.ID) int {
		return cw(r.me, load(a)).cmp(cw(r.me, load(b)))
	})
	return dst
}

// chordFor returns the chord for target distance d: the first linked
// chord (of those chosen before) at or after the target if it is within
// d/2 past it, else the first known node at or after it; nothing if that
// is a successor or already chosen.
func (r *Ring) chordFor(d u256, chosen []nodeid.ID) (nodeid.ID, bool) {
	t := r.me.add(d)
	usable := func(id nodeid.ID) bool {
		return !slices.Contains(r.succ, id) && !slices.Contains(chosen, id)
	}
	if l, ok := atOrAfter(r.sticky, t); ok && cw(t, load(l)).cmp(d.shr(1)) <= 0 && usable(l) {
		return l, true
	}
	if s, ok := atOrAfter(r.nodes, t); ok && usable(s) {
		return s, true
	}
	return nodeid.ID{}, false
}

// atOrAfter returns the first ID of the ascending list at or clockwise
// after point t, wrapping around; false if the list is empty.
func atOrAfter(sorted []nodeid.ID, t u256) (nodeid.ID, bool) {
	if len(sorted) == 0 {
		return nodeid.ID{}, false
	}
	i, _ := slices.BinarySearchFunc(sorted, t.id(), nodeid.ID.Compare)
	return sorted[i%len(sorted)], true
}
