package topology

import (
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The ring maintenance protocol, driven by the node's control loop:
//
//	events ─► LinkUp / LinkDown / LinkFailed / Learn / Forget / Apply
//	after each batch of events, and on a ticker (about 1 s):
//	  Tick(now) ─► Connect: set up links (signaling routed through the overlay)
//	            ─► Close:   close links neither end wants, then LinkDown
//	            ─► Announce: send Neighbors(now) on every link
//	Neighbors received on a link ─► Apply(from, m)
//
// A node announces all its links, each marked Wanted when it keeps the
// link for its own reasons, whenever they change and every Refresh. That
// one message does two jobs. It is link state one hop out: whoever links
// to a node knows the nodes it links to, which is how a joining node
// finds the nodes next to it (each link it makes shows it nearer ones) and
// how the nodes around a join or a crash find each other. Because a node
// announces only its own links, never what it heard, a node that crashed
// is gone from every view once its peers have announced the lost links;
// nothing echoes it back (only a lease taken when a link was closed on
// purpose may still name it, for at most 3×Refresh, until a failed
// set-up holds it down). And it lets both ends agree on closing a link:
// a link stays while either end wants it.

// RingActions is what Tick asks of the control loop.
type RingActions struct {
	// Connect lists the nodes the ring wants a link to and has none,
	// ascending. Set each up unless that is already under way, and pace
	// retries; report a set-up that fails with LinkFailed, which holds
	// the node down and so stops asking for it.
	Connect []nodeid.ID
	// Close lists the links that neither end wants, ascending: this node
	// does not, and the peer's latest Neighbors said it does not. Close
	// each (with a goodbye so that the peer calls LinkDown, not
	// LinkFailed), then call LinkDown.
	Close []nodeid.ID
	// Announce asks for Neighbors(now) to be sent on every link: what it
	// says has changed since it was last built, or Refresh has passed.
	Announce bool
}

// Tick returns what to do at now. It changes nothing but expiry, so it
// may be called as often as convenient: after every batch of events and
// on a ticker, so that leases expire and the refresh goes out. Between
// changes it answers from a cached plan, so a tick at rest costs a few
// comparisons.
func (r *Ring) Tick(now time.Time) RingActions {
	r.update(now)
	if !r.plan.ok {
		r.makePlan(now)
	}
	return RingActions{
		Connect:  slices.Clone(r.plan.connect),
		Close:    slices.Clone(r.plan.close),
		Announce: len(r.links) > 0 && (now.Sub(r.sentAt) >= r.cfg.Refresh || !r.plan.same),
	}
}

// ringPlan is what Tick derives from the state. Whatever changes its
// inputs (a rebuild, a peer's wish, SetOnDemand, a hold-down ending)
// clears ok; Neighbors sets same.
type ringPlan struct {
	ok      bool
	connect []nodeid.ID
	close   []nodeid.ID
	wanted  []bool // of each linked node, in r.linked order
	same    bool   // Neighbors would say what r.sent says
}

func (r *Ring) makePlan(now time.Time) {
	p := &r.plan
	p.connect, p.close, p.wanted = p.connect[:0], p.close[:0], p.wanted[:0]
	for _, id := range r.succ {
		if r.links[id] == nil {
			p.connect = append(p.connect, id)
		}
	}
	for _, id := range r.chords {
		if r.links[id] == nil {
			p.connect = append(p.connect, id)
		}
	}
	for id := range r.onDemand {
		if r.links[id] == nil && !r.isHeld(id, now) {
			p.connect = append(p.connect, id)
		}
	}
	slices.SortFunc(p.connect, nodeid.ID.Compare)
	p.connect = slices.Compact(p.connect)
	p.same = len(r.sent) == len(r.linked)
	for i, id := range r.linked {
		w := r.wants(id)
		p.wanted = append(p.wanted, w)
		if l := r.links[id]; l.heard && !l.wants && !w {
			p.close = append(p.close, id)
		}
		p.same = p.same && r.sent[i] == NeighborLink{ID: id, Wanted: w}
	}
	p.ok = true
}

func (r *Ring) isHeld(id nodeid.ID, now time.Time) bool {
	until, ok := r.held[id]
	return ok && now.Before(until)
}

// wants reports whether this node wants the link for its own reasons.
func (r *Ring) wants(id nodeid.ID) bool {
	return r.onDemand[id] || slices.Contains(r.succ, id) || slices.Contains(r.chords, id)
}

// Neighbors returns the announcement of this node's links at now, to
// send on every link, and notes it as sent. The links are ascending, at
// most MaxNeighbors of them (beyond that, wanted links go first).
func (r *Ring) Neighbors(now time.Time) *Neighbors {
	m := r.NeighborsFor(now)
	r.sent, r.sentAt, r.plan.same = slices.Clone(m.Links), now, true
	return m
}

// NeighborsFor returns the announcement Neighbors would, for one link
// (an answer to a new peer), without noting it as sent: the other links
// still get it at the next Tick if it is news to them.
func (r *Ring) NeighborsFor(now time.Time) *Neighbors {
	r.update(now)
	if !r.plan.ok {
		r.makePlan(now)
	}
	m := &Neighbors{Links: make([]NeighborLink, len(r.linked))}
	for i, id := range r.linked {
		m.Links[i] = NeighborLink{ID: id, Wanted: r.plan.wanted[i]}
	}
	if len(m.Links) > MaxNeighbors {
		// Stable: wanted ones first, then by ID; then back in ID order.
		slices.SortStableFunc(m.Links, func(a, b NeighborLink) int {
			switch {
			case a.Wanted == b.Wanted:
				return 0
			case a.Wanted:
				return -1
			}
			return 1
		})
		m.Links = m.Links[:MaxNeighbors]
		slices.SortFunc(m.Links, func(a, b NeighborLink) int { return a.ID.Compare(b.ID) })
	}
	return m
}

// Apply takes Neighbors m received on the link to from: from's links
// replace what it listed before, and its entry for this node says
// whether it wants the link. It reports whether anything changed. A
// message from a node that is not linked is ignored: only a node's own
// links are believed, and only while linked to it; of those, only nodes
// Attested, and at most MaxPeerLinks, the nearest this node.
func (r *Ring) Apply(from nodeid.ID, m *Neighbors) (changed bool) {
	p := r.links[from]
	if p == nil {
		r.unlinked.Add(1)
		return false
	}
	lists := make([]nodeid.ID, 0, len(m.Links))
	for _, l := range m.Links {
		switch {
		case l.ID == r.self:
			if !p.heard || p.wants != l.Wanted {
				p.heard, p.wants, changed = true, l.Wanted, true
				r.plan.ok = false
			}
		case !l.ID.IsZero() && (r.cfg.Attested == nil || r.cfg.Attested(l.ID)):
			lists = append(lists, l.ID)
		default:
			r.ignored.Add(1)
		}
	}
	if len(lists) > MaxPeerLinks {
		r.ignored.Add(uint64(len(lists) - MaxPeerLinks))
		// Keep the nearest this node: they are what its successors and
		// routes depend on.
		me := load(r.self)
		slices.SortFunc(lists, func(a, b nodeid.ID) int { return ringDist(me, load(a)).cmp(ringDist(me, load(b))) })
		lists = lists[:MaxPeerLinks]
	}
	slices.SortFunc(lists, nodeid.ID.Compare) // decoded messages are; built ones may not be
	if !slices.Equal(lists, p.lists) {
		p.lists, r.dirty, changed = lists, true, true
	}
	return changed
}
