package topology

import (
	"maps"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The Ring's derived view: what is known, in ring order, and the links it
// wants. Rebuilt lazily by update, the first time it is read after a
// change, so a burst of events costs one rebuild.

// Known returns every node known (linked or not, self excluded) in ring
// order: clockwise from self.
func (r *Ring) Known(now time.Time) []nodeid.ID {
	r.update(now)
	i, _ := slices.BinarySearchFunc(r.nodes, r.self, nodeid.ID.Compare)
	return append(slices.Clone(r.nodes[i:]), r.nodes[:i]...)
}

// Links returns the linked nodes, ascending by ID.
func (r *Ring) Links() []nodeid.ID {
	return slices.SortedFunc(maps.Keys(r.links), nodeid.ID.Compare)
}

// Desired returns the links the ring wants at now, each list in ring
// order from self: the Successors next known nodes clockwise, and up to
// Chords long-distance nodes chosen as ring_chords.go explains. The
// result is a function of the known and the linked nodes only, so it
// changes only when they do.
func (r *Ring) Desired(now time.Time) (successors, chords []nodeid.ID) {
	r.update(now)
	return slices.Clone(r.succ), slices.Clone(r.chords)
}

// Wanted reports whether this node wants a link to id for its own
// reasons: a successor, a chord, or an on-demand link.
func (r *Ring) Wanted(id nodeid.ID, now time.Time) bool {
	r.update(now)
	return r.wants(id)
}

// Routes returns the routing snapshot of the links up at now, with what
// each linked node last announced of its own links. It is built on the
// first call after a change and shared until the next one: publish it to
// the data path when it differs from the one published.
func (r *Ring) Routes(now time.Time) *Routes {
	r.update(now)
	if r.routes == nil {
		linked := make([]nodeid.ID, 0, len(r.linked))
		theirs := make([][]nodeid.ID, 0, len(r.linked))
		for _, id := range r.linked {
			p := r.links[id]
			if p.suspect {
				continue
			}
			lists := p.lists
			if r.cfg.Proven != nil {
				lists = slices.DeleteFunc(slices.Clone(lists), func(n nodeid.ID) bool { return !r.cfg.Proven(id, n) })
			}
			linked, theirs = append(linked, id), append(theirs, lists)
		}
		r.routes = NewRoutes(r.self, linked, theirs)
	}
	return r.routes
}

// Suspect marks the link to id as silent of late (suspect) or heard again:
// while suspect, Routes leaves it out, so packets for other nodes go
// around it; the link and its place in the ring stay. A no-op for a node
// not linked; the mark goes with the link.
func (r *Ring) Suspect(id nodeid.ID, suspect bool) {
	if p := r.links[id]; p != nil && p.suspect != suspect {
		p.suspect = suspect
		r.routes = nil
	}
}

// Reprove drops the routing snapshot, so that the next Routes asks
// RingConfig.Proven again: call it when proofs arrived or ran out.
func (r *Ring) Reprove() { r.routes = nil }

// update drops expired leases and hold-downs, then rebuilds what derives
// from the maps if anything changed.
func (r *Ring) update(now time.Time) {
	if !r.nextScan.IsZero() && !now.Before(r.nextScan) {
		r.nextScan = time.Time{}
		for id, exp := range r.learnt {
			if !now.Before(exp) {
				r.unlease(id)
			} else {
				r.schedule(exp)
			}
		}
		for id, until := range r.held {
			if !now.Before(until) {
				delete(r.held, id)
				r.dirty = true
			} else {
				r.schedule(until)
			}
		}
	}
	if !r.dirty {
		return
	}
	r.dirty, r.plan.ok, r.routes = false, false, nil
	r.linked = r.linked[:0]
	for id := range r.links {
		r.linked = append(r.linked, id)
	}
	slices.SortFunc(r.linked, nodeid.ID.Compare)
	// The leases can be many (the whole presence list) and are kept
	// sorted; the links and the peers' lists are few and sorted afresh,
	// then the two are merged.
	near := slices.Clone(r.linked)
	for _, p := range r.links {
		near = append(near, p.lists...)
	}
	slices.SortFunc(near, nodeid.ID.Compare)
	r.nodes = mergeIDs(r.nodes[:0], r.leased, slices.Compact(near))
	if len(r.held) > 0 {
		r.nodes = slices.DeleteFunc(r.nodes, func(id nodeid.ID) bool {
			_, held := r.held[id]
			return held && r.links[id] == nil
		})
	}
	r.succ = r.successors(r.succ[:0])
	// Sticky chords: the chords chosen before that are linked. Only
	// those: a link that exists for other reasons (an on-demand link,
	// ours or the peer's) must not become a chord, or it would outlive
	// the traffic that made it.
	r.sticky = r.sticky[:0]
	for _, id := range r.chords {
		if r.links[id] != nil {
			r.sticky = append(r.sticky, id)
		}
	}
	slices.SortFunc(r.sticky, nodeid.ID.Compare)
	r.chords = r.pickChords(r.chords[:0])
}

// mergeIDs appends to dst the union of ascending lists a and b.
func mergeIDs(dst, a, b []nodeid.ID) []nodeid.ID {
	for len(a) > 0 && len(b) > 0 {
		switch c := a[0].Compare(b[0]); {
		case c < 0:
			dst, a = append(dst, a[0]), a[1:]
		case c > 0:
			dst, b = append(dst, b[0]), b[1:]
		default:
			dst, a, b = append(dst, a[0]), a[1:], b[1:]
		}
	}
	return append(append(dst, a...), b...)
}

// successors appends the Successors nodes after self, clockwise.
func (r *Ring) successors(dst []nodeid.ID) []nodeid.ID {
	n := min(r.cfg.Successors, len(r.nodes))
	i, _ := slices.BinarySearchFunc(r.nodes, r.self, nodeid.ID.Compare)
	for k := range n {
		dst = append(dst, r.nodes[(i+k)%len(r.nodes)])
	}
	return dst
}
