package dataplane

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// macAge is how long a learned MAC stays bound to a node without traffic
// from it, like a bridge's ageing time.
const macAge = 5 * time.Minute

// macMoveAfter is how long a MAC must have been silent at its node before
// another node may take it without proof (see learn).
const macMoveAfter = 10 * time.Second

// Bounds of the MAC table: a node's hosts, and all of them. A member that
// sends from ever new MACs fills its own share and no more.
const (
	maxMACsPerNode = 4096
	maxMACs        = 65536
)

// macTable maps a source MAC to the node frames from it came from (over
// a link or routed). Lookups (every unicast frame sent) take only the read
// lock; the write lock is taken when a MAC is new or moves. Times come
// from a coarse clock that ExpireMACs advances, so the hot path never
// reads the system clock.
type macTable struct {
	mu   sync.RWMutex // guards m and perNode; entries' fields are atomics
	m    map[[6]byte]*macEntry
	per  map[nodeid.ID]int
	now  atomic.Int64  // unix nanos, advanced by tick
	full atomic.Uint64 // new MACs not learned: a node's share or the table full
	log  *limitlog.Logger
}

type macEntry struct {
	node nodeid.ID
	seen atomic.Int64
	// The newest IPv4 and IPv6 source addresses the node's certificate
	// allowed in frames from this MAC: a host that moves to another node
	// (switch mode) keeps its address, which proves the move.
	ip4, ip6 atomic.Pointer[netip.Addr]
}

func (t *macTable) init(now time.Time) {
	t.m = map[[6]byte]*macEntry{}
	t.per = map[nodeid.ID]int{}
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

// learn binds mac to node, which sent a frame from it whose source
// address ip its certificate allows (ip invalid: a frame without one, or
// with a link-local or unspecified source, which prove nothing). It
// reports false, and leaves the binding, when mac belongs to another node
// that used it within macMoveAfter and ip is not one of its addresses
// there: a member cannot take another's MAC and with it its traffic. A
// new MAC beyond the node's or the table's bound is not learned (the
// frame still goes through).
func (t *macTable) learn(mac [6]byte, node nodeid.ID, ip netip.Addr) bool {
	now := t.now.Load()
	t.mu.RLock()
	e := t.m[mac]
	t.mu.RUnlock()
	if e != nil && e.node == node {
		if e.seen.Load() != now {
			e.seen.Store(now)
		}
		e.note(ip)
		return true
	}
	if e != nil && now-e.seen.Load() <= int64(macMoveAfter) && !e.had(ip) {
		return false
	}
	n := &macEntry{node: node}
	n.seen.Store(now)
	n.note(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.m[mac]; old != nil {
		t.per[old.node]--
		if t.per[old.node] <= 0 {
			delete(t.per, old.node)
		}
	} else if len(t.m) >= maxMACs || t.per[node] >= maxMACsPerNode {
		t.full.Add(1)
		t.log.Log("node", node.Short(), "its_macs", t.per[node], "macs", len(t.m))
		return true
	}
	t.m[mac] = n
	t.per[node]++
	return true
}

func (e *macEntry) note(ip netip.Addr) {
	switch {
	case !ip.IsValid():
	case ip.Is4():
		if p := e.ip4.Load(); p == nil || *p != ip {
			e.ip4.Store(&ip)
		}
	default:
		if p := e.ip6.Load(); p == nil || *p != ip {
			e.ip6.Store(&ip)
		}
	}
}

func (e *macEntry) had(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	p := e.ip4.Load()
	if ip.Is6() {
		p = e.ip6.Load()
	}
	return p != nil && *p == ip
}

// tick advances the clock and drops aged entries.
func (t *macTable) tick(now time.Time) {
	n := now.UnixNano()
	t.now.Store(n)
	t.mu.Lock()
	for mac, e := range t.m {
		if n-e.seen.Load() > int64(macAge) {
			delete(t.m, mac)
			if t.per[e.node]--; t.per[e.node] <= 0 {
				delete(t.per, e.node)
			}
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
