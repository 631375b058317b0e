package dataplane

// Frames on a group's distribution tree (topology/tree.go builds the
// trees; the multicast plane decides, per frame, through Multicast).
//
//	tree packet (wire.FlagTree): kind (1) | TTL (1) | origin (32) | envelope
//	envelope: the origin's signed envelope (trust.Signer) of treeMark ‖ frame
//
// The origin (the node whose TAP the frame came from) signs each frame
// once; every tree node checks the signature and the origin's
// certificate (the frame's source address must be the origin's) before
// it delivers or passes the frame on, so a node on the tree cannot make
// up or alter frames of other nodes, and the envelope's replay window
// drops a frame that comes twice (a tree being repaired can hold a stale
// edge for a moment). Nodes on the tree see the frames: the trust model
// in README says so.
//
//	kind treeAlong:  from a tree neighbour: to the other tree neighbours
//	                 (Multicast.TreeForward), and to the TAP if members
//	                 want it; from a node that is not a neighbour: stray,
//	                 dropped (tree_stray)
//	kind treeToRoot: from a source off the tree, passed greedily toward
//	                 the group's key; the first node on the tree sends it
//	                 along the tree to all its tree neighbours
//
// Tree neighbours that are linked get the packet over the link; others
// (an adopted edge, or a link that is down) get it sealed end to end
// with wire.FlagTree inside (toNode).

import (
	"crypto/sha256"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

const (
	treeAlong     = 1
	treeToRoot    = 2
	treeHeaderLen = 2 + len(nodeid.ID{})
	// treeMark is the first byte of a signed tree frame's message: no
	// control kind and not frameMark, so that it passes for neither a
	// control message nor a broadcast frame.
	treeMark = 0xfe
	// heldTreeMark starts a tree packet held for its origin's certificate
	// (held.go keeps routed packets, which start with a route header's
	// version, never this), followed by the node it came from.
	heldTreeMark = 0xff
	// treeTTL: the hops a frame may take along a tree: up one branch and
	// down another, each at most MaxTreeDepth (toward the root, the
	// ring's HopLimit).
	treeTTL = 2 * topology.MaxTreeDepth
)

// treeDst is the destination tree frames are signed for (the envelope
// binds one): not a node, and not zero (a broadcast).
var treeDst = nodeid.ID(sha256.Sum256([]byte("ipopd tree frame v1")))

// treeSend sends frame f from the TAP down its group's tree (Tree: to
// the tree neighbours in targets) or toward its root (ToRoot: targets[0]
// is the group's key).
func (p *Plane) treeSend(s *scratch, v *View, action Action, targets []nodeid.ID, f []byte) {
	if p.cfg.Signer == nil || len(targets) == 0 {
		return
	}
	env, err := p.cfg.Signer.Seal(treeDst, append(append(s.plain[:0], treeMark), f...), false)
	if err != nil {
		p.counters.e2eFailed.Add(1)
		return
	}
	kind := byte(treeAlong)
	if action == ToRoot {
		kind = treeToRoot
	}
	ttl := byte(treeTTL)
	if action == ToRoot {
		ttl = topology.HopLimit
	}
	pkt := append(append([]byte{kind, ttl}, p.self[:]...), env...)
	p.counters.treeSent.Add(1)
	if action == ToRoot {
		// Onto the tree at a subscriber this node has a link to (one
		// hop; a tree node takes a frame toward the root onto the tree
		// wherever it is), else toward the root, else routed to a
		// subscriber (the ring has no node nearer the key up just now:
		// one died, the routes go around it).
		for _, id := range targets[1:] {
			if peer, pa := v.path(id); peer != nil && (v.routes == nil || v.routes.Linked(id)) {
				p.seal(s, peer, pa, wire.FlagTree, pkt)
				return
			}
		}
		if v.routes != nil {
			if _, ok := v.routes.NextHop(targets[0]); !ok && len(targets) > 1 {
				p.toNode(s, v, targets[1], wire.FlagTree, pkt)
				return
			}
		}
		p.treeToward(s, v, targets[0], pkt)
		return
	}
	for _, id := range targets {
		p.toNode(s, v, id, wire.FlagTree, pkt)
	}
}

// treeToward passes tree packet pkt (kind treeToRoot) to the next hop
// toward key.
func (p *Plane) treeToward(s *scratch, v *View, key nodeid.ID, pkt []byte) {
	if v.routes == nil {
		p.counters.noRoute.Add(1)
		return
	}
	next, ok := v.routes.NextHop(key)
	if !ok {
		// Nearest the key, and not on the tree: nobody subscribed, or
		// the tree is being built.
		p.counters.treeNoTree.Add(1)
		return
	}
	if peer, pa := v.path(next); peer != nil {
		p.seal(s, peer, pa, wire.FlagTree, pkt)
	}
}

// treeFrame takes tree packet pkt from node from (the link's peer, or
// the e2e origin of a routed one).
func (p *Plane) treeFrame(s *scratch, v *View, from nodeid.ID, pkt []byte) {
	if len(pkt) < treeHeaderLen+1 || pkt[0] != treeAlong && pkt[0] != treeToRoot || pkt[1] == 0 || pkt[1] > treeTTL ||
		pkt[0] == treeToRoot && pkt[1] > topology.HopLimit {
		p.counters.badTree.Add(1)
		return
	}
	kind, ttl, origin, env := pkt[0], pkt[1], nodeid.ID(pkt[2:treeHeaderLen]), pkt[treeHeaderLen:]
	if origin == p.self || p.mcast == nil {
		p.counters.badTree.Add(1)
		return
	}
	cert := p.cfg.Directory.Peer(origin)
	if cert == nil {
		// A node on the tree that never heard of the origin: the frame
		// waits for its certificate (a hello), as routed packets do.
		held := append(append([]byte{heldTreeMark}, from[:]...), pkt...)
		if !p.held.hold(origin, held, time.Now()) {
			p.counters.unknownOrigin.Add(1)
			p.limits.held.Log("origin", origin.Short())
		}
		p.askHello(origin)
		return
	}
	// What the frame is, and where it goes, before the signature is
	// checked: a stray or malformed one must not enter the origin's
	// replay window (its copy on the right edge would then be refused as
	// a replay), and costs no verification.
	peek, ok := trust.Peek(env)
	if !ok || len(peek) < 1+tap.EthHeaderLen || peek[0] != treeMark {
		p.counters.badTree.Add(1)
		return
	}
	pf := tap.Parse(peek[1:])
	if pf.Class != tap.ClassMulticast {
		p.counters.badTree.Add(1)
		return
	}
	targets, verdict := p.mcast.TreeForward(&pf, peek[1:], from, kind == treeAlong, s.targets[:0])
	s.targets = targets
	if !verdict.On && kind == treeAlong {
		p.counters.treeStray.Add(1)
		return
	}
	// Signed for treeDst: no other envelope of the origin's (a broadcast,
	// a control message) passes for a tree frame, nor one for them.
	msg, _, err := p.cfg.Directory.OpenStream(origin, treeDst, env)
	if err != nil || len(msg) < 1+tap.EthHeaderLen || msg[0] != treeMark {
		p.counters.badOrigin.Add(1)
		p.log.Debug("tree frame refused", "origin", origin.Short(), "from", from.Short(), "err", err)
		return
	}
	frame := msg[1:]
	switch {
	case !verdict.On: // toward the root, still off the tree
		if verdict.Key.IsZero() {
			p.counters.badTree.Add(1) // not a group's frame
			return
		}
		if ttl <= 1 {
			p.counters.expired.Add(1)
			return
		}
		pkt[1] = ttl - 1
		p.treeToward(s, v, verdict.Key, pkt)
		return
	}
	if len(targets) > 0 {
		// On the tree: a fresh TTL along it when the frame joins it here.
		if kind == treeToRoot {
			pkt[0], pkt[1] = treeAlong, treeTTL
		} else if pkt[1] = ttl - 1; ttl <= 1 {
			p.counters.expired.Add(1)
			targets = nil
		}
		for _, id := range targets {
			p.toNode(s, v, id, wire.FlagTree, pkt)
		}
		p.counters.treeForwarded.Add(uint64(len(targets)))
	}
	if verdict.Local {
		p.deliver(s, origin, cert, frame)
	}
}
