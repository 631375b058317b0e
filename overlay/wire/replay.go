package wire

// ReplayWindow is the receiver's sliding anti-replay window (RFC 6479): it
// accepts each counter at most once, and only counters greater than
// highest-WindowSize, where highest is the largest counter accepted so far.
// Counter 0 is never accepted because senders start at 1.
//
// The bitmap is a ring of 64-bit blocks. Moving the window forward clears
// whole blocks instead of shifting bits, so an advance costs at most
// ringBlocks word stores however far it jumps, and a check is one word test.
//
// The zero value is an empty window, ready to use. A ReplayWindow is not
// safe for concurrent use; Session guards its window with a lock.
type ReplayWindow struct {
	highest uint64 // largest accepted counter; 0 before the first
	ring    [ringBlocks]uint64
}

const (
	blockBits = 64
	// ringBlocks must hold every block the window can touch: WindowSize
	// counters span up to WindowSize/blockBits+1 blocks when the window
	// does not start on a block boundary. A power of two turns the ring
	// index into a mask. 64 blocks are 512 bytes per session.
	ringBlocks = 64
	ringMask   = ringBlocks - 1
)

// Compile-time check of the comment above: the window fits in the ring.
var _ [ringBlocks - (WindowSize/blockBits + 1)]struct{}

// Check reports whether Accept(ctr) would succeed, without recording ctr.
func (w *ReplayWindow) Check(ctr uint64) bool {
	switch {
	case ctr == 0:
		return false
	case ctr > w.highest:
		return true
	case w.highest-ctr >= WindowSize:
		return false
	}
	return w.ring[(ctr/blockBits)&ringMask]&(1<<(ctr%blockBits)) == 0
}

// Accept records ctr and reports true if it is new and inside the window,
// and reports false, changing nothing, otherwise.
func (w *ReplayWindow) Accept(ctr uint64) bool {
	switch {
	case ctr == 0:
		return false
	case ctr > w.highest:
		// Clear the blocks the window slides onto: they still hold bits of
		// counters a whole ring ago. Past ringBlocks every block is stale.
		top, next := w.highest/blockBits, ctr/blockBits
		n := next - top
		if n > ringBlocks {
			n = ringBlocks
		}
		for i := uint64(1); i <= n; i++ {
			w.ring[(top+i)&ringMask] = 0
		}
		w.highest = ctr
	case w.highest-ctr >= WindowSize:
		return false
	}
	block, bit := &w.ring[(ctr/blockBits)&ringMask], uint64(1)<<(ctr%blockBits)
	if *block&bit != 0 {
		return false
	}
	*block |= bit
	return true
}

// Highest returns the largest counter accepted so far, 0 if none.
func (w *ReplayWindow) Highest() uint64 { return w.highest }
