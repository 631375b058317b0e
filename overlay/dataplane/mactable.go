package dataplane

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// macAge is how long a learned MAC stays bound to a node without traffic
// from it, like a bridge's ageing time.
const macAge = 5 * time.Minute

// macTable maps a source MAC to the node frames from it came from (over
// a link or routed). Lookups (every unicast frame sent) take only the read
// lock; the write lock is taken when a MAC is new or moves. Times come
// from a coarse clock that ExpireMACs advances, so the hot path never
// reads the system clock.
type macTable struct {
	mu  sync.RWMutex // guards m; entries' fields are atomics
	m   map[[6]byte]*macEntry
	now atomic.Int64 // unix nanos, advanced by tick
}

type macEntry struct {
	node nodeid.ID
	seen atomic.Int64
}

func (t *macTable) init(now time.Time) {
	t.m = map[[6]byte]*macEntry{}
	t.now.Store(now.UnixNano())
}

func (t *macTable) lookup(mac [6]byte) (nodeid.ID, bool) {
	t.mu.RLock()
	e := t.m[mac]
	t.mu.RUnlock()
	if e == nil || t.now.Load()-e.seen.Load() > int64(macAge) {
		return nodeid.ID{}, false
	}
	return e.node, true
}

func (t *macTable) learn(mac [6]byte, node nodeid.ID) {
	now := t.now.Load()
	t.mu.RLock()
	e := t.m[mac]
	t.mu.RUnlock()
	if e != nil && e.node == node {
		if e.seen.Load() != now {
			e.seen.Store(now)
		}
		return
	}
	e = &macEntry{node: node}
	e.seen.Store(now)
	t.mu.Lock()
	t.m[mac] = e
	t.mu.Unlock()
}

// tick advances the clock and drops aged entries.
func (t *macTable) tick(now time.Time) {
	n := now.UnixNano()
	t.now.Store(n)
	t.mu.Lock()
	for mac, e := range t.m {
		if n-e.seen.Load() > int64(macAge) {
			delete(t.m, mac)
		}
	}
	t.mu.Unlock()
}

// size is the number of learned MACs.
func (t *macTable) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
