package mcast

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// Route implements dataplane.Multicast for multicast frames read from the
// TAP (TAP reader goroutine only: it uses mc.scratch). The data plane
// never asks about IGMP and MLD (they are not data), broadcast or ARP/ND.
//
// Link-scope groups (224.0.0.0/24, ff02::/16) and non-IP multicast go to
// every node, as RFC 4541 asks of snooping switches. Other groups go to
// exactly the nodes whose filter for the group admits the source: none,
// if nobody subscribed.
func (mc *Plane) Route(p *tap.Parsed, frame []byte, dst []nodeid.ID) ([]nodeid.ID, dataplane.Action) {
	group, src, ok := p.Group()
	if !ok || linkScope(group) {
		return dst, dataplane.Flood
	}
	st := mc.state.Load()
	n := len(dst)
	if st.treeMode[group] {
		// Down the group's tree (tree.go): to this node's tree
		// neighbours, or toward the root from off the tree.
		if st.trees.On(group) {
			dst, _, _ = st.trees.Forward(group, src, nodeid.ID{}, dst)
			st.stats.get(group).add(len(dst)-n, len(frame), true)
			return dst, dataplane.Tree
		}
		// Off the tree: toward the root, or straight onto the tree at a
		// subscriber (every one is on it), which the data plane prefers
		// when one is linked.
		st.stats.get(group).add(1, len(frame), true)
		dst = append(dst, topology.GroupKey(group))
		return st.view.TargetsN(group, src, dst, maxInjectAt), dataplane.ToRoot
	}
	dst = st.view.Targets(group, src, dst)
	st.stats.get(group).add(len(dst)-n, len(frame), true)
	return dst, dataplane.To
}

// Deliver implements dataplane.Multicast for multicast frames from links:
// a group's frame reaches the TAP only where a local member wants it from
// that source.
func (mc *Plane) Deliver(p *tap.Parsed, frame []byte) bool {
	group, src, ok := p.Group()
	if !ok || linkScope(group) {
		return true
	}
	st := mc.state.Load()
	f, member := st.local[group]
	if !member || !f.Allows(src) {
		return false
	}
	st.stats.get(group).add(1, len(frame), false)
	return true
}

var linkLocal4 = netip.MustParsePrefix("224.0.0.0/24")

// linkScope: 224.0.0.0/24, and IPv6 groups of interface- or link-local scope.
func linkScope(g netip.Addr) bool {
	if g.Is4() {
		return linkLocal4.Contains(g)
	}
	return g.As16()[1]&0x0f <= 2
}

// groupStats counts, per group, frames and bytes sent to nodes and
// delivered to the TAP. Groups are added under the lock; counters are
// atomics, so the data plane takes only the read lock.
type groupStats struct {
	mu sync.RWMutex
	m  map[netip.Addr]*groupCounter
}

type groupCounter struct {
	fwdFrames, fwdBytes, dlvFrames, dlvBytes atomic.Uint64
}

func newGroupStats() *groupStats { return &groupStats{m: map[netip.Addr]*groupCounter{}} }

func (s *groupStats) get(g netip.Addr) *groupCounter {
	s.mu.RLock()
	c := s.m[g]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.m[g]; c == nil {
		c = &groupCounter{}
		s.m[g] = c
	}
	return c
}

func (c *groupCounter) add(frames, size int, forwarded bool) {
	if forwarded {
		c.fwdFrames.Add(uint64(frames))
		c.fwdBytes.Add(uint64(frames * size))
		return
	}
	c.dlvFrames.Add(uint64(frames))
	c.dlvBytes.Add(uint64(frames * size))
}

func (s *groupStats) groups() []netip.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := make([]netip.Addr, 0, len(s.m))
	for g := range s.m {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].Less(gs[j]) })
	return gs
}
