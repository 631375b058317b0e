package topology

import (
	"crypto/sha256"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Distribution trees over the ring, Scribe-style (Castro et al. 2002), as
// DESIGN.md sets out; the multicast plane (overlay/mcast) drives them and
// the data plane forwards along them (TreeTable). TestSimulateTrees
// measures them on a ring of 1,000 and 10,000 nodes.
//
// A group's root is the node nearest the group's key (GroupKey) on the
// ring: where greedy routing toward the key stops, the same node whoever
// routes. A node with members (or children) joins by sending a TreeJoin
// to its next hop toward the key; that hop keeps the sender as a child
// and, if it was not on the tree yet, joins the same way, so a join stops
// at the first node already on the tree. The join carries the branch's
// aggregated source filter (the union of what the node's members and
// children want), so that a frame goes down only the branches that admit
// its source. Joins are repeated every TreeRefresh, between tree
// neighbours only; a child not heard for three refreshes is dropped.
//
// A frame goes to every tree neighbour except the one it came from: up
// to the parent always (the other branches are beyond it), down to each
// child whose filter admits the source. Every node on the tree gets it
// once: the tree has no cycles.
//
// Fan-out: a node with Fanout children (Fanout-1 below the root: one
// copy goes up) that is asked to take one more
// sends the newcomer a TreeRedirect to the child nearest it on the ring,
// which it joins instead (Scribe's bottleneck remover); that child may
// pass it further down. Such an adopted edge is not a ring link (the
// join and the frames along it are routed), and its parent is not
// nearer the key, so a redirect could in principle close a cycle: every
// TreeAck (the answer to a join) carries the parent's depth, a node's
// depth is its parent's plus one, and a node that finds itself deeper
// than MaxTreeDepth leaves its adopted parent and joins greedily again; a
// change of depth is passed to the children at once (capped at
// MaxTreeDepth+1), so a cycle counts up to the bound within a round trip
// per hop, and the count goes round until it reaches the adopted edge.
//
// Repair: a parent that is no longer linked (greedy edges, and adopted
// ones that had a link: the ring noticed it die, or the data plane found
// it silent or lossy) or has not answered for three refreshes (adopted
// edges without a link), and a greedy parent that is no longer the next hop toward the
// key (a node nearer the key joined the ring), is replaced on the next
// Tick by a join to the current next hop; the old parent is pruned. A
// root that is no longer nearest the key joins the new one.
//
// A node finds a dead parent before the parent's parent may notice that
// child gone (it sends to it; the other has nothing to send it): so a
// redirect back to a node whose link went here lately is not followed,
// the node joins the redirecting parent again naming that node (Avoid),
// and the parent picks another child or takes it. A node with no link
// nearer the key is the root only if no link announced a node nearer it
// either: else the ring has a hole here (a link not up again after a
// restart), and it joins the nearest such node (a detour, routed through
// the link that announced it) until a link nearer the key comes.

// GroupKey is the point on the ring a group's tree is rooted at.
func GroupKey(g netip.Addr) nodeid.ID {
	g = canonical(g)
	return nodeid.ID(sha256.Sum256(append([]byte("ipopd tree v1 "), g.AsSlice()...)))
}

// Tree bounds.
const (
	DefaultFanout = 8
	MaxFanout     = 64
	MaxTreeDepth  = HopLimit
	TreeRefresh   = 30 * time.Second
	// JoinRetry: a join not acknowledged this long is sent again.
	JoinRetry = 2 * time.Second
)

// TreeKind says what a TreeMsg is.
type TreeKind uint8

const (
	// TreeJoin, child to parent: keep me as a child of the group's tree,
	// with this filter (also the refresh).
	TreeJoin TreeKind = iota + 1
	// TreePrune, child to parent: forget me.
	TreePrune
	// TreeRedirect, parent to a would-be child: join under To instead.
	TreeRedirect
	// TreeAck, parent to child: you are my child; I am at Depth.
	TreeAck
	// TreeQuery, any node to any: what is your place in the group's
	// tree? (ipopctl tree; answered by TreeInfo, never by Trees.)
	TreeQuery
	// TreeInfo, the answer: Root, Depth, Parent and Children here.
	TreeInfo
)

// TreeMsg is one tree control message between two nodes.
type TreeMsg struct {
	Kind   TreeKind
	Group  netip.Addr
	Filter filter.Filter // TreeJoin
	// Avoid, TreeJoin: a child of the parent's not to be redirected to
	// (this node lost its link to it: the parent may not know yet).
	Avoid nodeid.ID
	To    nodeid.ID // TreeRedirect
	Depth int       // TreeAck, TreeInfo
	// TreeInfo: the sender's place in the tree (no parent and no
	// children, not Root: not on it).
	Root     bool
	Parent   nodeid.ID
	Children []nodeid.ID
}

// MaxInfoChildren bounds the children a TreeInfo lists: a node has at
// most MaxFanout, one more while a repair takes it past its bound.
const MaxInfoChildren = MaxFanout + 1

// Info returns this node's place in g's tree, as a TreeInfo.
func (t *Trees) Info(g netip.Addr) TreeMsg {
	m := TreeMsg{Kind: TreeInfo, Group: g}
	if tg := t.groups[g]; tg != nil && tg.onTree() {
		m.Root, m.Depth, m.Parent = tg.root, min(tg.depth, MaxTreeDepth+1), tg.parent
		m.Children = slices.SortedFunc(maps.Keys(tg.children), nodeid.ID.Compare)
		m.Children = m.Children[:min(len(m.Children), MaxInfoChildren)]
	}
	return m
}

// TreeSend is a message for node To.
type TreeSend struct {
	To  nodeid.ID
	Msg TreeMsg
}

// Trees is one node's part in every group's tree. Like Ring it belongs to
// the node's control loop and is fed the current Routes.
type Trees struct {
	self   nodeid.ID
	fanout int
	groups map[netip.Addr]*treeGroup
	gone   map[nodeid.ID]time.Time // nodes Gone told of, for TreeRefresh
	// lost: parents this node left as failed (their link went, or no
	// ack came), for TreeRefresh: a redirect to one, or a detour through
	// one, likely leads to a dead node others have not noticed.
	lost map[nodeid.ID]time.Time
	// links: the adopted parents AdoptedParents last chose (sticky).
	links []nodeid.ID
	// lossy (SetLossy): whether the link to a node is up but routed
	// around for its loss; nil: never.
	lossy   func(nodeid.ID) bool
	out     []TreeSend
	refused uint64
	entries int               // children held, each 1 + its filter's sources
	byChild map[nodeid.ID]int // groups each child node is held in
	// entriesBy: the entries each child node's joins hold, over all groups.
	entriesBy map[nodeid.ID]int
}

// Bounds of what other nodes' joins make a node hold: the groups whose
// trees it is on, the children and their filters' sources over all of
// them, and the groups one node may be its child in and the entries its
// joins may hold over all of them (so that one member cannot take the
// whole budget; its joins also travel on toward each root). A join beyond is refused (Refused counts it) and retried by the
// child at its next refresh.
const (
	MaxTreeGroups  = 1 << 16
	MaxTreeEntries = 1 << 20
	maxChildGroups = 4096
	// maxChildEntries: the entries (each group 1, plus its filter's
	// sources) one node's joins may hold: 4,096 groups of 15 sources
	// each, not 4,096 of 256 (more than MaxTreeEntries).
	maxChildEntries = maxChildGroups * 16
)

// Refused is the number of joins refused at the bounds.
func (t *Trees) Refused() uint64 { return t.refused }

// maxGone bounds the gone nodes remembered.
const maxGone = 4096

type treeGroup struct {
	key     nodeid.ID
	root    bool
	parent  nodeid.ID // zero: none (the root, or not joined yet)
	adopted bool      // parent chosen by a redirect, not the next hop
	// wasLinked: the adopted parent has had a link with this node since
	// the redirect; its link going (silent, lossy or down) is its loss.
	wasLinked bool
	depth     int       // hops below the root (0 at the root)
	acked     time.Time // the parent's last TreeAck
	// unacked: the last join sent has had no ack yet; it is sent again
	// every JoinRetry (a join or its ack lost, or dropped by a busy
	// parent), not only at the next refresh.
	unacked bool
	// unackedSince: when the first join still unanswered went.
	unackedSince time.Time
	// avoid: sent with each join until one is acked (TreeMsg.Avoid).
	avoid nodeid.ID
	// detour: the parent is no ring link but a node nearer the key that
	// a link announced (no link is nearer the key than this node: the
	// ring has a hole here, e.g. a link not up again after a restart);
	// adopted too. Left for the next hop as soon as there is one.
	detour   bool
	sent     filter.Filter
	sentAt   time.Time
	local    filter.Filter // this node's members; Empty: none
	children map[nodeid.ID]*treeChild
	fwd      *treeFwd // Table's copy; nil when parent, children or filters changed
}

type treeChild struct {
	filter filter.Filter
	heard  time.Time
	// wasLinked: the child has had a link with this node; its link
	// going (the child died, or went silent) drops it.
	wasLinked bool
}

// NewTrees returns the trees of node self, at most fanout children per
// group (DefaultFanout when 0; 1..MaxFanout).
func NewTrees(self nodeid.ID, fanout int) *Trees {
	if fanout <= 0 {
		fanout = DefaultFanout
	}
	return &Trees{self: self, fanout: min(fanout, MaxFanout), groups: map[netip.Addr]*treeGroup{}, gone: map[nodeid.ID]time.Time{},
		byChild: map[nodeid.ID]int{}, entriesBy: map[nodeid.ID]int{}, lost: map[nodeid.ID]time.Time{}}
}

// SetLossy gives the trees the data plane's view of lossy links. A
// parent left because its link is lossy (routed around, not silent) is
// not taken for lost: the node may go back to it at once as a detour,
// through its other links, around the lossy one. (Staying under it was
// tried, ac4c29c: the children of a node with a lossy underlay then kept
// its loss, and an address change cost its subtree up to 6 s.)
func (t *Trees) SetLossy(f func(nodeid.ID) bool) { t.lossy = f }

// markLost records parent id as failed at now (bounded: expired
// entries go first; beyond maxGone, not recorded).
func (t *Trees) markLost(id nodeid.ID, now time.Time) {
	if len(t.lost) >= maxGone {
		maps.DeleteFunc(t.lost, func(_ nodeid.ID, at time.Time) bool { return now.Sub(at) >= TreeRefresh })
	}
	if len(t.lost) < maxGone {
		t.lost[id] = now
	}
}

// setParent makes id tg's parent (zero: none), how it was found, with
// the timers of a new edge; avoid is kept only for the same parent.
func (t *Trees) setParent(tg *treeGroup, id nodeid.ID, adopted, detour, linked bool, now time.Time) {
	if id != tg.parent {
		tg.avoid = nodeid.ID{}
	}
	tg.root, tg.parent, tg.adopted, tg.detour, tg.wasLinked = false, id, adopted, detour, linked
	tg.acked, tg.unacked = now, false
	if adopted {
		tg.depth = 0 // unknown until the new parent's ack
	}
	tg.fwd = nil
}

// unsure reports whether id is gone, or its link here went lately.
func (t *Trees) unsure(id nodeid.ID, now time.Time) bool {
	_, gone := t.gone[id]
	at, lost := t.lost[id]
	return gone || lost && now.Sub(at) < TreeRefresh
}

func (t *Trees) hasDetour(rt *Routes, key nodeid.ID, now time.Time) bool {
	_, ok := t.detourTo(rt, key, now)
	return ok
}

// detourTo is the node nearest key among those the links announced,
// strictly nearer key than this node, neither linked nor unsure: a
// parent for a node with no link nearer the key (NextHop found none).
func (t *Trees) detourTo(rt *Routes, key nodeid.ID, now time.Time) (nodeid.ID, bool) {
	k := load(key)
	limit := ringDist(rt.me, k)
	var best nodeid.ID
	var bestD u256
	found := false
	for i, v := range rt.via {
		for j, z := range v {
			id := rt.viaID[i][j]
			d := ringDist(z, k)
			if d.cmp(limit) >= 0 || rt.Linked(id) || t.unsure(id, now) {
				continue
			}
			if !found || d.cmp(bestD) < 0 || d.cmp(bestD) == 0 && id.Compare(best) < 0 {
				best, bestD, found = id, d, true
			}
		}
	}
	return best, found
}

func (t *Trees) send(to nodeid.ID, m TreeMsg) { t.out = append(t.out, TreeSend{to, m}) }

func (t *Trees) take() []TreeSend {
	out := t.out
	t.out = nil
	return out
}

func (t *Trees) group(g netip.Addr) *treeGroup {
	tg := t.groups[g]
	if tg == nil {
		tg = &treeGroup{key: GroupKey(g), children: map[nodeid.ID]*treeChild{}}
		t.groups[g] = tg
	}
	return tg
}

// aggregate is what the branch below this node wants of g.
func (tg *treeGroup) aggregate() filter.Filter {
	f := tg.local.Clone()
	for _, c := range tg.children {
		f = unionFilter(f, c.filter)
	}
	return f
}

func (tg *treeGroup) onTree() bool { return tg.root || !tg.parent.IsZero() }

// SetLocal records this node's members' filter for g (Empty: none left)
// and returns what to send.
func (t *Trees) SetLocal(rt *Routes, g netip.Addr, f filter.Filter, now time.Time) []TreeSend {
	tg := t.group(g)
	tg.local = f.Clone()
	tg.fwd = nil
	t.settle(rt, g, tg, now)
	return t.take()
}

// settle joins, refreshes or leaves g's tree after tg changed.
func (t *Trees) settle(rt *Routes, g netip.Addr, tg *treeGroup, now time.Time) {
	agg := tg.aggregate()
	if agg.Empty() {
		if !tg.parent.IsZero() {
			t.send(tg.parent, TreeMsg{Kind: TreePrune, Group: g})
		}
		delete(t.groups, g)
		return
	}
	if !tg.onTree() {
		t.joinGreedy(rt, g, tg, now)
		return
	}
	if !tg.root && !agg.Equal(tg.sent) {
		t.join(g, tg, agg, now)
	}
}

// joinGreedy joins g's tree through the next hop toward its key, or
// makes this node the root when no link is nearer the key.
func (t *Trees) joinGreedy(rt *Routes, g netip.Addr, tg *treeGroup, now time.Time) {
	next, ok := rt.NextHop(tg.key)
	if !ok {
		if to, ok := t.detourTo(rt, tg.key, now); ok {
			// Not the root: a node nearer the key is one hop beyond a
			// link (joins and frames go to it routed, through that link).
			t.setParent(tg, to, true, true, false, now)
			t.dropChild(tg, to)
			t.join(g, tg, tg.aggregate(), now)
			return
		}
		t.setParent(tg, nodeid.ID{}, false, false, false, now)
		tg.root, tg.depth = true, 0
		t.ackChildren(g, tg)
		return
	}
	t.setParent(tg, next, false, false, true, now)
	t.dropChild(tg, next) // it takes us as its child: not both
	t.join(g, tg, tg.aggregate(), now)
}

func (t *Trees) join(g netip.Addr, tg *treeGroup, agg filter.Filter, now time.Time) {
	if !tg.unacked {
		tg.unackedSince = now
	}
	tg.sent, tg.sentAt, tg.unacked = agg, now, true
	t.send(tg.parent, TreeMsg{Kind: TreeJoin, Group: g, Filter: agg, Avoid: tg.avoid})
}

func (t *Trees) ackChildren(g netip.Addr, tg *treeGroup) {
	for _, id := range slices.SortedFunc(maps.Keys(tg.children), nodeid.ID.Compare) {
		t.send(id, TreeMsg{Kind: TreeAck, Group: g, Depth: tg.depth})
	}
}

// Receive takes a tree message from node from and returns what to send.
func (t *Trees) Receive(rt *Routes, from nodeid.ID, m *TreeMsg, now time.Time) []TreeSend {
	if from == t.self || from.IsZero() {
		return nil
	}
	switch m.Kind {
	case TreeJoin:
		t.onJoin(rt, from, m, now)
	case TreePrune:
		tg := t.groups[m.Group]
		switch {
		case tg == nil:
		case tg.children[from] != nil:
			t.dropChild(tg, from)
			t.settle(rt, m.Group, tg, now)
		case tg.parent == from && !tg.aggregate().Empty():
			// Our parent does not hold us (it restarted, dropped us, or
			// took our frames before our join): join it again now, not
			// at the next refresh (our frames up are strays there, and
			// nothing comes down). Its prunes come at most one per
			// strayEvery, and so do these joins.
			t.join(m.Group, tg, tg.aggregate(), now)
		}
	case TreeRedirect:
		tg := t.groups[m.Group]
		if tg == nil || tg.parent != from || m.To == t.self || m.To.IsZero() {
			return nil // not from our parent, or to ourselves: ignored
		}
		if t.unsure(m.To, now) || tg.children[m.To] != nil {
			// To a node gone or lost here (the parent has not heard
			// yet: its link to a child it sends nothing to is not
			// watched closely) or below us (a stale child of the
			// parent's): join the parent again, naming the node to
			// avoid, once per node. A redirect to the node avoided
			// already answers an earlier join (the one naming it is on
			// its way); to another node we cannot take, off the tree
			// until the next Tick joins again (at most one round a
			// Tick, not a ping-pong at the round trip).
			switch {
			case m.To == tg.avoid:
			case !tg.avoid.IsZero():
				t.setParent(tg, nodeid.ID{}, false, false, false, now)
			default:
				tg.avoid = m.To
				t.join(m.Group, tg, tg.aggregate(), now)
			}
			return t.take()
		}
		t.setParent(tg, m.To, true, false, rt.Linked(m.To), now)
		t.join(m.Group, tg, tg.aggregate(), now)
	case TreeAck:
		tg := t.groups[m.Group]
		if tg == nil || tg.parent != from {
			return nil
		}
		tg.acked, tg.unacked, tg.avoid = now, false, nodeid.ID{}
		d := min(m.Depth+1, MaxTreeDepth+1)
		if d > MaxTreeDepth && tg.adopted {
			// A cycle, closed by a redirect: leave it, join greedily.
			// (A node on a greedy edge only passes the capped depth on:
			// the count goes round until it reaches the adopted edge
			// that closes the cycle.)
			t.send(tg.parent, TreeMsg{Kind: TreePrune, Group: m.Group})
			t.markLost(tg.parent, now) // not to detour back into the cycle
			t.setParent(tg, nodeid.ID{}, false, false, false, now)
			tg.depth = 0
			t.joinGreedy(rt, m.Group, tg, now)
			return t.take()
		}
		if d != tg.depth {
			tg.depth = d
			t.ackChildren(m.Group, tg)
		}
	}
	return t.take()
}

func (t *Trees) onJoin(rt *Routes, from nodeid.ID, m *TreeMsg, now time.Time) {
	if m.Filter.Empty() || !validGroup(m.Group) {
		return
	}
	var c *treeChild
	if tg := t.groups[m.Group]; tg != nil {
		c = tg.children[from]
	}
	old := 0
	if c != nil {
		old = entriesOf(c.filter)
	}
	if t.groups[m.Group] == nil && len(t.groups) >= MaxTreeGroups ||
		t.entries-old+entriesOf(m.Filter) > MaxTreeEntries || c == nil && t.byChild[from] >= maxChildGroups ||
		t.entriesBy[from]-old+entriesOf(m.Filter) > maxChildEntries {
		t.refused++
		return
	}
	tg := t.group(m.Group)
	switch {
	case c == nil && from == tg.parent:
		// Our (adopted) parent joins through us: its next hop toward the
		// key is now this node, and a greedy edge wins. Take it as a
		// child and join greedily ourselves.
		tg.parent, tg.adopted = nodeid.ID{}, false
		tg.fwd = nil
	case c == nil && len(tg.children) >= t.maxChildren(tg):
		avoid := m.Avoid
		if len(tg.children) > t.maxChildren(tg) {
			// One over the bound already (taken past a child it named):
			// no more, whatever a join names.
			avoid = nodeid.ID{}
		}
		if to, ok := nearestChild(rt, tg, from, avoid); ok {
			t.send(from, TreeMsg{Kind: TreeRedirect, Group: m.Group, To: to})
			return
		}
	}
	if c == nil {
		c = &treeChild{}
		tg.children[from] = c
		tg.fwd = nil
		t.byChild[from]++
	}
	t.entries += entriesOf(m.Filter) - old
	t.entriesBy[from] += entriesOf(m.Filter) - old
	c.filter, c.heard = m.Filter.Clone(), now
	c.wasLinked = c.wasLinked || rt.Linked(from)
	tg.fwd = nil
	t.send(from, TreeMsg{Kind: TreeAck, Group: m.Group, Depth: tg.depth})
	t.settle(rt, m.Group, tg, now)
}

// dropChild forgets child id of tg.
func (t *Trees) dropChild(tg *treeGroup, id nodeid.ID) {
	c := tg.children[id]
	if c == nil {
		return
	}
	t.entries -= entriesOf(c.filter)
	if t.entriesBy[id] -= entriesOf(c.filter); t.entriesBy[id] <= 0 {
		delete(t.entriesBy, id)
	}
	if t.byChild[id]--; t.byChild[id] <= 0 {
		delete(t.byChild, id)
	}
	delete(tg.children, id)
	tg.fwd = nil
}

// maxChildren bounds tg's children so that no frame of the group leaves
// this node in more than fanout copies: a node with a parent sends one
// copy up, so it keeps one child fewer.
func (t *Trees) maxChildren(tg *treeGroup) int {
	if tg.root {
		return t.fanout
	}
	return max(t.fanout-1, 1)
}

// nearestChild is the child nearest node id on the ring, not id itself
// nor avoid (id lost its link to it), and not one that had a link here
// and has none now (dead or silent: a node sent there would wait for an
// ack that does not come).
func nearestChild(rt *Routes, tg *treeGroup, id, avoid nodeid.ID) (nodeid.ID, bool) {
	t := load(id)
	var best nodeid.ID
	var bestD u256
	found := false
	for c, ch := range tg.children {
		if c == id || c == avoid || ch.wasLinked && !rt.Linked(c) {
			continue
		}
		d := ringDist(load(c), t)
		if !found || d.cmp(bestD) < 0 || d.cmp(bestD) == 0 && c.Compare(best) < 0 {
			best, bestD, found = c, d, true
		}
	}
	return best, found
}

// Gone tells the trees that node id has left the overlay or died (the
// ring, the rendezvous or a gone notice said so): it is no longer a
// child, and a group whose parent it was joins again at once (an
// adopted parent is not a link, so nothing else would notice before its
// acks stop).
func (t *Trees) Gone(rt *Routes, id nodeid.ID, now time.Time) []TreeSend {
	if len(t.gone) >= maxGone {
		maps.DeleteFunc(t.gone, func(_ nodeid.ID, at time.Time) bool { return now.Sub(at) >= TreeRefresh })
	}
	if len(t.gone) < maxGone {
		t.gone[id] = now
	}
	for _, g := range slices.SortedFunc(maps.Keys(t.groups), netip.Addr.Compare) {
		tg := t.groups[g]
		t.dropChild(tg, id)
		if tg.parent == id {
			t.setParent(tg, nodeid.ID{}, false, false, false, now)
		}
		t.settle(rt, g, tg, now)
	}
	return t.take()
}

// Tick repairs and refreshes every tree this node is on, and returns
// what to send.
func (t *Trees) Tick(rt *Routes, now time.Time) []TreeSend {
	maps.DeleteFunc(t.gone, func(_ nodeid.ID, at time.Time) bool { return now.Sub(at) >= TreeRefresh })
	for _, g := range slices.SortedFunc(maps.Keys(t.groups), netip.Addr.Compare) {
		tg := t.groups[g]
		for id, c := range tg.children {
			// A child whose link went stays (frames go to it routed)
			// until Gone or three refreshes: it may only have gone
			// silent here for a moment, and if it joined elsewhere its
			// copies from here are strays, which it prunes.
			if now.Sub(c.heard) >= 3*TreeRefresh {
				t.dropChild(tg, id)
				continue
			}
			c.wasLinked = c.wasLinked || rt.Linked(id)
		}
		if tg.aggregate().Empty() {
			t.settle(rt, g, tg, now)
			continue
		}
		next, ok := rt.NextHop(tg.key)
		linked := rt.Linked(tg.parent)
		switch {
		case !tg.onTree():
			t.joinGreedy(rt, g, tg, now)
		case tg.root:
			if ok || t.hasDetour(rt, tg.key, now) {
				t.joinGreedy(rt, g, tg, now) // not the root (any more)
			}
		case tg.detour && ok && next != tg.parent:
			// A link nearer the key: the ring's hole is mended (a
			// detour parent that is now linked and the next hop stays
			// one, its link kept as a tree link).
			t.send(tg.parent, TreeMsg{Kind: TreePrune, Group: g})
			t.joinGreedy(rt, g, tg, now)
		case tg.adopted && (now.Sub(tg.acked) >= 3*TreeRefresh || tg.wasLinked && !linked ||
			tg.unacked && now.Sub(tg.unackedSince) >= 2*JoinRetry),
			!tg.adopted && (!linked || !ok || next != tg.parent):
			old := tg.parent
			if !linked && (t.lossy == nil || !t.lossy(old)) {
				t.markLost(old, now) // not to be redirected or detoured back to it
			}
			t.joinGreedy(rt, g, tg, now)
			if _, gone := t.gone[old]; !gone && tg.parent != old {
				// Routed if the link went: a parent that still holds us
				// would go on sending (every frame twice, by two ways).
				// None to a lossy parent taken again as a detour.
				t.send(old, TreeMsg{Kind: TreePrune, Group: g})
			}
		case now.Sub(tg.sentAt) >= TreeRefresh, tg.unacked && now.Sub(tg.sentAt) >= JoinRetry:
			t.join(g, tg, tg.aggregate(), now)
		}
		if tg.adopted && rt.Linked(tg.parent) {
			tg.wasLinked = true
		}
	}
	return t.take()
}

// Forward appends to dst the tree neighbours a frame of group g from
// source src goes to, having come from tree neighbour from (zero: from
// this node's TAP, or routed toward the group's key by a source off the
// tree), and reports whether this node's members want it. A node not on
// g's tree returns nothing; so does a frame from a node that is not a
// tree neighbour (stray: it holds a stale edge to this node, which
// should be pruned), which would otherwise reach the tree twice.
func (t *Trees) Forward(g, src netip.Addr, from nodeid.ID, dst []nodeid.ID) (_ []nodeid.ID, local, stray bool) {
	tg := t.groups[g]
	if tg == nil {
		return dst, false, !from.IsZero()
	}
	if !from.IsZero() && from != tg.parent && tg.children[from] == nil {
		return dst, false, true
	}
	if !tg.parent.IsZero() && tg.parent != from {
		dst = append(dst, tg.parent)
	}
	for _, id := range slices.SortedFunc(maps.Keys(tg.children), nodeid.ID.Compare) {
		if id != from && tg.children[id].filter.Allows(src) {
			dst = append(dst, id)
		}
	}
	return dst, tg.local.Allows(src), false
}

// TreeTable is an immutable copy of what Forward needs, for the data
// path's readers (Trees itself belongs to the control loop): build one
// with Table after each change and publish it.
type TreeTable struct {
	groups map[netip.Addr]*treeFwd
}

type treeFwd struct {
	parent   nodeid.ID
	children []nodeid.ID // ascending
	filters  []filter.Filter
	local    filter.Filter
}

// Table returns the forwarding state of every tree this node is on. Each
// group's part is built once per change and shared by the tables after
// it (they never modify it), so a table costs a map of pointers.
func (t *Trees) Table() *TreeTable {
	tt := &TreeTable{groups: make(map[netip.Addr]*treeFwd, len(t.groups))}
	for g, tg := range t.groups {
		if !tg.onTree() {
			continue
		}
		if tg.fwd == nil {
			f := &treeFwd{parent: tg.parent, local: tg.local.Clone()}
			for _, id := range slices.SortedFunc(maps.Keys(tg.children), nodeid.ID.Compare) {
				f.children = append(f.children, id)
				f.filters = append(f.filters, tg.children[id].filter.Clone())
			}
			tg.fwd = f
		}
		tt.groups[g] = tg.fwd
	}
	return tt
}

// On reports whether this node is on g's tree.
func (tt *TreeTable) On(g netip.Addr) bool { _, ok := tt.groups[g]; return ok }

// Forward is Trees.Forward on the copy: the tree neighbours a frame of g
// from source src goes to, having come from tree neighbour from (zero:
// from this node's TAP or from off the tree); whether this node's members
// want it; stray when from is not a tree neighbour (or this node is not
// on the tree).
func (tt *TreeTable) Forward(g, src netip.Addr, from nodeid.ID, dst []nodeid.ID) (_ []nodeid.ID, local, stray bool) {
	f := tt.groups[g]
	if f == nil {
		return dst, false, !from.IsZero()
	}
	if !from.IsZero() && from != f.parent {
		if _, ok := slices.BinarySearchFunc(f.children, from, nodeid.ID.Compare); !ok {
			return dst, false, true
		}
	}
	if !f.parent.IsZero() && f.parent != from {
		dst = append(dst, f.parent)
	}
	for i, id := range f.children {
		if id != from && f.filters[i].Allows(src) {
			dst = append(dst, id)
		}
	}
	return dst, f.local.Allows(src), false
}

// TreeRole is this node's place in one group's tree, for status.
type TreeRole struct {
	Group    netip.Addr
	Root     bool
	Parent   nodeid.ID
	Adopted  bool
	Detour   bool
	Depth    int
	Children []nodeid.ID
	Local    filter.Filter
}

// MaxTreeLinks bounds the links AdoptedParents asks for.
const MaxTreeLinks = 8

// AdoptedParents returns the parents this node has on trees that are not
// the ring's next hop (adopted ones and detours), at most MaxTreeLinks,
// ascending: links the node should make and keep, so that such a
// parent's death is noticed by link liveness in under a second, not when
// the overlay finds the node gone (~6 s). The choice is sticky: a parent
// chosen stays chosen while it is one (a link released would look like
// its death); free places go to the parents of the most groups.
func (t *Trees) AdoptedParents() []nodeid.ID {
	count := map[nodeid.ID]int{}
	for _, tg := range t.groups {
		if tg.adopted && !tg.parent.IsZero() {
			count[tg.parent]++
		}
	}
	keep := slices.DeleteFunc(t.links, func(id nodeid.ID) bool { return count[id] == 0 })
	var more []nodeid.ID
	for id := range count {
		if !slices.Contains(keep, id) {
			more = append(more, id)
		}
	}
	slices.SortFunc(more, func(a, b nodeid.ID) int {
		if d := count[b] - count[a]; d != 0 {
			return d
		}
		return a.Compare(b)
	})
	keep = append(keep, more[:min(len(more), MaxTreeLinks-len(keep))]...)
	t.links = keep
	out := slices.Clone(keep)
	slices.SortFunc(out, nodeid.ID.Compare)
	return out
}

// Roles returns this node's place in each tree it is on, by group.
func (t *Trees) Roles() []TreeRole {
	var out []TreeRole
	for _, g := range slices.SortedFunc(maps.Keys(t.groups), netip.Addr.Compare) {
		tg := t.groups[g]
		out = append(out, TreeRole{Group: g, Root: tg.root, Parent: tg.parent, Adopted: tg.adopted, Detour: tg.detour, Depth: tg.depth,
			Children: slices.SortedFunc(maps.Keys(tg.children), nodeid.ID.Compare), Local: tg.local.Clone()})
	}
	return out
}
