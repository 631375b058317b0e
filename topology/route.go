package topology

import (
	"slices"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Greedy routing. A frame or control message for a node this node has no
// link to travels in a routed packet (Route header, route_wire.go), and
// every node on the way hands it to a linked node nearer the destination:
//
//	origin:   dst linked? send direct : Routes.NextHop(dst) ─► Route{self, dst, HopLimit}
//	receiver: Routes.Forward(&hdr) ─► Deliver | Forward(next) | Expired | NoRoute
//
// Both run per packet on the data path, on an immutable Routes snapshot
// (route_table.go): no allocation, no lock. NextHop below is the plain
// rule on a bare list of links; Routes adds a one-hop lookahead.
//
// # Why it cannot loop
//
// "Nearer" is by ring distance, min(cw(x, dst), cw(dst, x)), and a hop is
// taken only to a node strictly nearer dst than the current one. So along
// any path the distance to dst strictly decreases, and no node can appear
// twice: a path is loop-free whatever each node's links are, even while
// links change under it and different nodes see different rings, because
// the metric depends on IDs alone. It also ends, in at most as many hops
// as there are nodes.
//
// # Why it arrives
//
// If every node links to its successor on the ring (so also to its
// predecessor: links go both ways), a node x ≠ dst always has a nearer
// link: the successor if dst is ahead on the shorter side, the predecessor
// if behind. So the packet reaches dst if dst exists, and otherwise stops
// at a node next to where dst would be (NoRoute). The chords make the path
// short: Symphony's O(log² n / k) for k chords, less in practice because
// routing uses links in both directions and the chords other nodes chose.
//
// # Relay: the one detour
//
// Greedy routing gives up where no link is nearer dst, which happens
// when the ring has a hole (a successor left and its replacement is not
// linked yet, or a pair cannot link at all), even though a linked node
// may have a link to dst. Then the packet goes to such a node with
// Route.Relay set (Routes.Relay, chosen from the links each peer
// announced), and that node delivers it over its own link to dst or
// drops it: it never routes a relayed packet further. So a path is a
// strictly nearer walk plus at most one final detour of one hop, and
// still cannot loop.
//
// HopLimit is then not what prevents loops; it bounds the work one packet
// can cause when the ring is far from converged (a long walk along
// successors) or a node misbehaves, and the hop count is a byte.

// HopLimit is the TTL a routed packet starts with: it is delivered within
// at most HopLimit hops or dropped. A converged ring of 500 nodes with 2
// successors and 2 chords routes in 4.5 hops on average and 13 at worst
// (TestSimulate); 64 leaves room for much larger or half-built rings.
const HopLimit = 64

// NextHop returns the linked node to hand a packet for dst to: the one
// nearest dst on the ring, and strictly nearer than self; false if there
// is none (dst == self, or no link is nearer). dst itself is returned
// when linked. self in links is skipped. Ties (two links equally near,
// one each side of dst) go to the one at or after dst, so the answer
// does not depend on the order of links.
func NextHop(self, dst nodeid.ID, links []nodeid.ID) (nodeid.ID, bool) {
	t := load(dst)
	best := ringDist(load(self), t)
	var next nodeid.ID
	found := false
	for _, l := range links {
		if l == self {
			continue
		}
		x := load(l)
		d := ringDist(x, t)
		switch c := d.cmp(best); {
		case c < 0, c == 0 && found && cw(t, x) == d:
			best, next, found = d, l, true
		}
	}
	return next, found
}

// Verdict is what a node does with a routed packet it received.
type Verdict uint8

const (
	// Deliver: the packet is for this node.
	Deliver Verdict = iota + 1
	// Forward: send it on to the returned node, with the header as Next
	// left it (TTL one less).
	Forward
	// Expired: it would take more than HopLimit hops; drop it.
	Expired
	// NoRoute: no link is nearer the destination: the destination is not
	// in the overlay, or the ring around it is not yet built. Drop it.
	NoRoute
)

func (v Verdict) String() string {
	switch v {
	case Deliver:
		return "deliver"
	case Forward:
		return "forward"
	case Expired:
		return "expired"
	case NoRoute:
		return "no route"
	}
	return "verdict?"
}

// Branch is one copy of a broadcast: send it to To with the Route's Dst
// set to Limit, the end of the arc of the ring To is responsible for.
// Via, when not zero, is the linked node to send it through (To is not
// linked): the copy goes encapsulated in a relayed packet for To.
type Branch struct{ To, Limit, Via nodeid.ID }

// Fanout appends to dst the copies node self sends of a broadcast that
// covers the arc (self, limit), clockwise: the originator passes limit =
// self, the whole ring; a receiver passes its header's Dst. The linked
// nodes y1 < y2 < … < ym inside the arc (in clockwise order) each get a
// copy covering [yi, yi+1), the last one up to limit.
//
// This is the broadcast of El-Ansary et al. (2003) on this ring: the arcs
// are disjoint, so every node gets the broadcast at most once, with no
// duplicates to suppress and n-1 messages in all; if every node links to
// its successor, every node in the arc gets it, because the first link
// after self is then the successor and each arc's owner covers the rest
// of its arc the same way. Chords keep the tree shallow. Copies carry the
// TTL one less, as in Routes.Forward, and are dropped when it runs out.
func Fanout(self, limit nodeid.ID, links []nodeid.ID, dst []Branch) []Branch {
	me := load(self)
	span := cw(me, load(limit)) // 0 when limit == self: the whole ring
	start := len(dst)
	for _, l := range links {
		if l == self {
			continue
		}
		if d := cw(me, load(l)); span == (u256{}) || d.cmp(span) < 0 {
			dst = append(dst, Branch{To: l})
		}
	}
	out := dst[start:]
	slices.SortFunc(out, func(a, b Branch) int {
		return cw(me, load(a.To)).cmp(cw(me, load(b.To)))
	})
	out = slices.CompactFunc(out, func(a, b Branch) bool { return a.To == b.To })
	for i := range out {
		out[i].Limit = limit
		if i+1 < len(out) {
			out[i].Limit = out[i+1].To
		}
	}
	return dst[:start+len(out)]
}
