package node

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
)

// Route implements overlay.Multicast for frames read from the TAP (TAP
// reader goroutine only: it uses mc.scratch).
//
// IGMP and MLD are never data. Link-scope groups (224.0.0.0/24, ff02::/16),
// broadcast and non-IP multicast go to every node, as RFC 4541 asks of
// snooping switches. Other groups go to exactly the nodes whose filter for
// the group admits the source: none, if nobody subscribed.
func (mc *mcast) Route(frame []byte, dst []nodeid.ID) ([]nodeid.ID, overlay.Action) {
	switch tap.Classify(frame) {
	case tap.ClassIGMP, tap.ClassMLD:
		return dst, overlay.Drop
	case tap.ClassMulticast:
	default:
		return dst, overlay.Flood
	}
	group, src, ok := ipMulticast(frame)
	if !ok || linkScope(group) {
		return dst, overlay.Flood
	}
	st := mc.state.Load()
	mc.scratch = st.view.Targets(group, src, mc.scratch[:0])
	for _, id := range mc.scratch {
		dst = append(dst, id)
	}
	st.stats.get(group).add(len(mc.scratch), len(frame), true)
	return dst, overlay.To
}

// Deliver implements overlay.Multicast for frames from links: a group's
// frame reaches the TAP only where a local member wants it from that source.
func (mc *mcast) Deliver(frame []byte) bool {
	switch tap.Classify(frame) {
	case tap.ClassIGMP, tap.ClassMLD:
		return false
	case tap.ClassMulticast:
	default:
		return true
	}
	group, src, ok := ipMulticast(frame)
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

// ipMulticast returns the destination group and source of an IP multicast
// frame (one 802.1Q tag allowed).
func ipMulticast(f []byte) (group, src netip.Addr, ok bool) {
	if len(f) < 14 {
		return
	}
	et, ip := binary.BigEndian.Uint16(f[12:14]), f[14:]
	if et == tap.EtherTypeVLAN && len(ip) >= 4 {
		et, ip = binary.BigEndian.Uint16(ip[2:4]), ip[4:]
	}
	switch {
	case et == tap.EtherTypeIPv4 && len(ip) >= 20 && ip[0]>>4 == 4:
		group, src = netip.AddrFrom4([4]byte(ip[16:20])), netip.AddrFrom4([4]byte(ip[12:16]))
	case et == tap.EtherTypeIPv6 && len(ip) >= 40 && ip[0]>>4 == 6:
		group, src = netip.AddrFrom16([16]byte(ip[24:40])), netip.AddrFrom16([16]byte(ip[8:24]))
	default:
		return
	}
	return group, src, group.IsMulticast()
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
// atomics, so the data path takes only the read lock.
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
