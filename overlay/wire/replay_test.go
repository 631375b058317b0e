package wire

import (
	"math"
	"math/rand/v2"
	"testing"
)

// replayModel is the acceptance rule written as plainly as possible: a set
// of every counter ever accepted and the highest of them. A counter is
// accepted if it is not 0, not seen, and less than WindowSize behind the
// highest.
type replayModel struct {
	seen    map[uint64]bool
	highest uint64
}

func newReplayModel() *replayModel { return &replayModel{seen: make(map[uint64]bool)} }

func (m *replayModel) check(ctr uint64) bool {
	if ctr == 0 || m.seen[ctr] {
		return false
	}
	return ctr > m.highest || m.highest-ctr < WindowSize
}

func (m *replayModel) accept(ctr uint64) bool {
	if !m.check(ctr) {
		return false
	}
	m.seen[ctr] = true
	m.highest = max(m.highest, ctr)
	return true
}

// compare feeds ctrs to a fresh window and a fresh model and reports the
// first disagreement, checking Check before every Accept.
func compare(t *testing.T, ctrs []uint64) {
	t.Helper()
	var w ReplayWindow
	m := newReplayModel()
	for i, c := range ctrs {
		if got, want := w.Check(c), m.check(c); got != want {
			t.Fatalf("step %d: Check(%d) = %v, model %v (highest %d)", i, c, got, want, m.highest)
		}
		if got, want := w.Accept(c), m.accept(c); got != want {
			t.Fatalf("step %d: Accept(%d) = %v, model %v (highest %d)", i, c, got, want, m.highest)
		}
		if w.Highest() != m.highest {
			t.Fatalf("step %d: highest %d, model %d", i, w.Highest(), m.highest)
		}
	}
}

func TestReplayWindowEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctrs []uint64
	}{
		{"zero never", []uint64{0, 1, 0}},
		{"first packets out of order", []uint64{3, 1, 2, 2, 1, 3}},
		{"oldest in window and just outside", []uint64{3000, 3000 - WindowSize + 1, 3000 - WindowSize, 3000 - WindowSize + 1}},
		{"block boundaries", []uint64{63, 64, 65, 127, 128, 64 + WindowSize, 64 + WindowSize - 1, 64, 65}},
		{"jump exactly one ring", []uint64{5, 5 + ringBlocks*blockBits, 5 + ringBlocks*blockBits - 1, 5}},
		{"jump two rings onto the same bit", []uint64{5, 5 + 2*ringBlocks*blockBits, 5}},
		{"jump past the ring", []uint64{100, 1 << 40, 1<<40 - 1, 100, 1<<40 - WindowSize, 1<<40 - WindowSize + 1}},
		{"top of the range", []uint64{math.MaxUint64 - 1, math.MaxUint64, math.MaxUint64 - WindowSize, math.MaxUint64 - WindowSize + 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) { compare(t, tc.ctrs) })
	}
}

// TestReplayWindowModel runs many random sequences shaped like real traffic
// and like attacks: mostly increasing with local reordering, duplicates,
// stragglers near the window edge and occasional long jumps.
func TestReplayWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := range 400 {
		// Most sequences start at 0; some near the top of the counter
		// space, where careless arithmetic would wrap.
		var hi uint64
		if seq%8 == 7 {
			hi = math.MaxUint64 - 1<<32
		}
		ctrs := make([]uint64, 0, 3000)
		for range cap(ctrs) {
			var c uint64
			switch r := rng.IntN(100); {
			case r < 50: // next few
				c = hi + rng.Uint64N(4)
			case r < 70: // reordered behind
				c = hi - min(hi, rng.Uint64N(64))
			case r < 85: // around the window's far edge
				c = hi - min(hi, WindowSize-4+rng.Uint64N(8))
			case r < 92: // a duplicate of something sent
				if len(ctrs) > 0 {
					c = ctrs[rng.IntN(len(ctrs))]
				}
			case r < 98: // a jump forward of up to a few rings
				c = hi + rng.Uint64N(5*ringBlocks*blockBits)
			default: // a long jump
				c = hi + rng.Uint64N(1<<24)
			}
			hi = max(hi, c)
			ctrs = append(ctrs, c)
		}
		t.Run("", func(t *testing.T) {
			if testing.Verbose() && seq == 0 {
				t.Logf("first sequence starts %v", ctrs[:10])
			}
			compare(t, ctrs)
		})
	}
}
