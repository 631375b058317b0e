package topology

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Where a View sits on the data path:
//
//	control loop: Apply/Remove/Expire ─► Table.View() ─► publish (atomic pointer)
//	TAP readers:  multicast frame (G, S) ─► View.Targets(G, S, scratch) ─► links
//
// A View never changes after it is built, so any number of TAP reader
// goroutines read one without locks while the control loop builds the next.

// View is an immutable snapshot of a Table: for each group, the nodes
// subscribed to it and their filters. All methods are safe for concurrent
// use.
type View struct {
	groups map[netip.Addr]*viewGroup
	sorted []netip.Addr
}

// viewGroup holds one group's subscribers, sorted by node ID so that
// Targets and Nodes answer in a stable order.
type viewGroup struct {
	// ids and filters are what Targets reads, kept apart from subs so
	// that its loop walks compact arrays; subs[i] is ids[i], filters[i].
	ids     []nodeid.ID
	filters []filter.Filter
	subs    []Subscription
	// anySource: every subscriber is EXCLUDE{}. Any-source joins (IGMPv2,
	// MLDv1, most applications) are the common case, and then Targets is
	// one copy instead of a filter test per node.
	anySource bool
}

// Subscription is one node's membership in a group, for display.
type Subscription struct {
	Node   nodeid.ID
	Filter filter.Filter
	Since  time.Time // when this node's membership was first seen here
}

func buildView(nodes map[nodeid.ID]*remote) *View {
	v := &View{groups: make(map[netip.Addr]*viewGroup)}
	for id, r := range nodes {
		for g, m := range r.groups {
			vg := v.groups[g]
			if vg == nil {
				vg = &viewGroup{anySource: true}
				v.groups[g] = vg
			}
			// Filters in the table are private copies that nothing
			// modifies, so the view shares them.
			vg.subs = append(vg.subs, Subscription{Node: id, Filter: m.filter, Since: m.since})
			vg.anySource = vg.anySource && m.filter.Mode == filter.Exclude && len(m.filter.Sources) == 0
		}
	}
	for _, vg := range v.groups {
		slices.SortFunc(vg.subs, func(a, b Subscription) int { return bytes.Compare(a.Node[:], b.Node[:]) })
		vg.ids = make([]nodeid.ID, len(vg.subs))
		vg.filters = make([]filter.Filter, len(vg.subs))
		for i, s := range vg.subs {
			vg.ids[i], vg.filters[i] = s.Node, s.Filter
		}
	}
	v.sorted = slices.SortedFunc(maps.Keys(v.groups), netip.Addr.Compare)
	return v
}

// Targets appends to dst the nodes subscribed to group whose filter admits
// source src, each node once, in node ID order, and returns the extended
// slice. group and src must be as parsed from the frame (IPv4 as 4 bytes,
// no zone). It allocates only if dst lacks capacity: readers keep one
// scratch slice and pass dst[:0].
func (v *View) Targets(group, src netip.Addr, dst []nodeid.ID) []nodeid.ID {
	vg := v.groups[group]
	if vg == nil {
		return dst
	}
	if vg.anySource {
		return append(dst, vg.ids...)
	}
	// Each node has one filter per group, so each appears once here.
	for i := range vg.filters {
		if vg.filters[i].Allows(src) {
			dst = append(dst, vg.ids[i])
		}
	}
	return dst
}

// TargetsN is Targets with at most n nodes appended.
func (v *View) TargetsN(group, src netip.Addr, dst []nodeid.ID, n int) []nodeid.ID {
	vg := v.groups[group]
	if vg == nil {
		return dst
	}
	for i := 0; i < len(vg.filters) && n > 0; i++ {
		if vg.filters[i].Allows(src) {
			dst = append(dst, vg.ids[i])
			n--
		}
	}
	return dst
}

// Nodes returns group's subscribers in node ID order (for ipopctl groups).
// The slice is the caller's; the filters' Sources must not be modified.
func (v *View) Nodes(group netip.Addr) []Subscription {
	if vg := v.groups[group]; vg != nil {
		return slices.Clone(vg.subs)
	}
	return nil
}

// Count returns the number of nodes subscribed to group.
func (v *View) Count(group netip.Addr) int {
	if vg := v.groups[group]; vg != nil {
		return len(vg.ids)
	}
	return 0
}

// Groups returns every group with at least one subscriber, sorted.
func (v *View) Groups() []netip.Addr { return slices.Clone(v.sorted) }

// Len returns the number of groups with at least one subscriber.
func (v *View) Len() int { return len(v.sorted) }
