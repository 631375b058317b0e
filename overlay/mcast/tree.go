package mcast

// Distribution trees (topology/tree.go) on the plane's loop, and the
// per-frame decisions the data plane asks of them (dataplane/tree.go).
//
// Per group, by the number of subscriber nodes the membership table
// knows (this one included): at most multicast.replicate_max, the source
// sends each frame to each of them (lowest latency, as before); more, and
// the group goes down a tree. Every node with members of such a group
// joins its tree at once; a source sends on the tree only once the group
// has been over the threshold for treeSwitch (its members' joins are in
// by then), and a member stays on the tree for treeLinger after the group
// fell back to replication (frames sent down the tree meanwhile still
// arrive), so that the switch loses nothing either way. replicate_max 0:
// always trees.
//
//	loop: memberships change (publish) ─► settleTrees: SetLocal per group
//	      when the routes change (looked for every treeCheck), and every
//	      treeTickBy ─► Trees.Tick (repair, refresh)
//	      tree messages (kind 4) ─► Trees.Receive
//	      a node takes this node for gone ─► Trees.Gone
//	      after each: TreeSends ─► SendControl; Trees.Table ─► state (data plane)
//
// A tree message from a node speaks only for its sender: its own join or
// prune (as a child), its redirect or ack (as a parent); the bounds are
// Trees'. A frame that comes along a tree from a node that is not a tree
// neighbour here (a stale edge) is answered with a prune, at most one
// per node and group each strayEvery.

import (
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

const (
	treeCheck  = 100 * time.Millisecond // for a change of the routes
	treeTickBy = time.Second            // Trees.Tick at least this often
	treeSwitch = 2 * time.Second
	treeLinger = 5 * time.Second
	strayEvery = 2 * time.Second
	maxStrays  = 4096
	// maxInjectAt: the subscribers a source off the tree offers the data
	// plane as ways onto it (Route, ToRoot).
	maxInjectAt = 8
)

type strayKey struct {
	from  nodeid.ID
	group netip.Addr
}

// treeState is the plane's part in the trees (loop only, but for the
// counters and the strays channel).
type treeState struct {
	t            *topology.Trees
	routes       func() *topology.Routes
	replicateMax int
	lastRoutes   *topology.Routes
	lastTick     time.Time
	joined       map[netip.Addr]filter.Filter // groups joined for our members, with the filter given
	over         map[netip.Addr]time.Time     // groups over replicate_max, since
	under        map[netip.Addr]time.Time     // joined groups back under it, since
	pruned       map[strayKey]time.Time       // prunes sent for strays
	strays       chan strayKey                // from the readers
	mode         map[netip.Addr]bool          // published: never modified, replaced
	// publishing: a publishTrees is queued on the loop, behind the tree
	// messages queued so far (a burst is published once, not per message).
	publishing bool
	wanted     []nodeid.ID   // the links last asked for (WantLinks)
	sent, recv atomic.Uint64 // tree messages
	// answering bounds the answers to others' TreeQuery (treewalk.go).
	answering      *rate.Limiter
	queriesLimited atomic.Uint64
	// refused mirrors Trees.Refused (joins refused at the trees' bounds)
	// for Drops; refusedLog logs it.
	refused    atomic.Uint64
	refusedLog *limitlog.Logger
	badMsgs    atomic.Uint64 // tree messages that do not parse
	queueFull  atomic.Uint64 // tree messages dropped: the loop was behind
}

func (ts *treeState) init(cfg Config) {
	ts.t = topology.NewTrees(cfg.Self, cfg.Fanout)
	ts.t.SetLossy(cfg.Lossy)
	ts.refusedLog = limitlog.New(cfg.Log, slog.LevelWarn, "tree joins refused: this node holds as many trees, children or entries of one child as it may (tree_joins_refused)", 0)
	ts.routes, ts.replicateMax = cfg.Routes, cfg.ReplicateMax
	ts.joined, ts.over, ts.under = map[netip.Addr]filter.Filter{}, map[netip.Addr]time.Time{}, map[netip.Addr]time.Time{}
	ts.pruned = map[strayKey]time.Time{}
	ts.strays = make(chan strayKey, 64)
	ts.answering = rate.NewLimiter(queryRate, queryBurst)
}

// rt is the current routes, or nil (no trees).
func (ts *treeState) rt() *topology.Routes {
	if ts.routes == nil {
		return nil
	}
	return ts.routes()
}

// settleTrees joins and leaves trees after st (just published) changed
// the memberships, and publishes the trees.
func (mc *Plane) settleTrees(st *state, now time.Time) {
	ts := &mc.trees
	rt := ts.rt()
	if rt == nil {
		return
	}
	count := func(g netip.Addr) int {
		n := st.view.Count(g)
		if _, ok := st.local[g]; ok {
			n++
		}
		return n
	}
	wanted := func(g netip.Addr) bool { return !linkScope(g) && (ts.replicateMax == 0 || count(g) > ts.replicateMax) }
	maps.DeleteFunc(ts.over, func(g netip.Addr, _ time.Time) bool { return !wanted(g) })
	for _, g := range st.view.Groups() {
		if _, ok := ts.over[g]; !ok && wanted(g) {
			ts.over[g] = now
		}
	}
	var out []topology.TreeSend
	for _, g := range slices.SortedFunc(maps.Keys(st.local), netip.Addr.Compare) {
		if !wanted(g) {
			continue
		}
		if _, ok := ts.over[g]; !ok {
			ts.over[g] = now
		}
		delete(ts.under, g)
		f := st.local[g]
		if jf, ok := ts.joined[g]; !ok || !jf.Equal(f) {
			ts.joined[g] = f.Clone()
			out = append(out, ts.t.SetLocal(rt, g, f, now)...)
		}
	}
	for _, g := range slices.SortedFunc(maps.Keys(ts.joined), netip.Addr.Compare) {
		_, local := st.local[g]
		switch {
		case local && wanted(g):
			continue
		case local: // back to replication: stay a while
			if since, ok := ts.under[g]; !ok {
				ts.under[g] = now
				continue
			} else if now.Sub(since) < treeLinger {
				continue
			}
		}
		delete(ts.joined, g)
		delete(ts.under, g)
		out = append(out, ts.t.SetLocal(rt, g, filter.Filter{}, now)...)
	}
	mc.sendTree(out)
	mc.publishTrees(now, true)
}

// treeTick repairs and refreshes the trees (when the routes changed, and
// every treeTickBy), runs the switch and linger timers, and answers
// strays.
func (mc *Plane) treeTick(now time.Time) {
	ts := &mc.trees
	rt := ts.rt()
	if rt == nil {
		return
	}
	for drained := false; !drained; {
		select {
		case k := <-ts.strays:
			mc.stray(k, now)
		default:
			drained = true
		}
	}
	switch {
	case now.Sub(ts.lastTick) >= treeTickBy:
		ts.lastRoutes, ts.lastTick = rt, now
		mc.sendTree(ts.t.Tick(rt, now))
		mc.settleTrees(mc.state.Load(), now) // and the switch and linger timers
	case rt != ts.lastRoutes:
		// A link went (or went silent), or came: repair at once.
		ts.lastRoutes = rt
		mc.sendTree(ts.t.Tick(rt, now))
		mc.publishTrees(now, false)
	}
}

// stray answers a frame that came along g's tree from a node that is not
// a tree neighbour here with a prune: it holds a stale edge to this node.
func (mc *Plane) stray(k strayKey, now time.Time) {
	ts := &mc.trees
	if last, ok := ts.pruned[k]; ok && now.Sub(last) < strayEvery {
		return
	}
	if _, _, stray := ts.t.Forward(k.group, netip.Addr{}, k.from, nil); !stray {
		return // a tree neighbour since the table the reader had (a join just taken)
	}
	if len(ts.pruned) >= maxStrays {
		maps.DeleteFunc(ts.pruned, func(_ strayKey, at time.Time) bool { return now.Sub(at) >= strayEvery })
		if len(ts.pruned) >= maxStrays {
			return
		}
	}
	ts.pruned[k] = now
	mc.sendTree([]topology.TreeSend{{To: k.from, Msg: topology.TreeMsg{Kind: topology.TreePrune, Group: k.group}}})
}

// treesGone tells the trees that node id is gone.
func (mc *Plane) treesGone(id nodeid.ID) {
	if rt := mc.trees.rt(); rt != nil {
		now := time.Now()
		mc.sendTree(mc.trees.t.Gone(rt, id, now))
		mc.publishTrees(now, false)
	}
}

// publishTrees replaces the trees the data plane reads; newMode also
// works out again which groups go down their trees (settleTrees: the
// groups over the threshold, or the switch timers, may have changed).
func (mc *Plane) publishTrees(now time.Time, newMode bool) {
	ts := &mc.trees
	if newMode || ts.mode == nil {
		ts.mode = map[netip.Addr]bool{}
		for g, since := range ts.over {
			if now.Sub(since) >= treeSwitch || ts.replicateMax == 0 {
				ts.mode[g] = true
			}
		}
	}
	old := mc.state.Load()
	st := *old
	st.trees, st.treeMode = ts.t.Table(), ts.mode
	mc.state.Store(&st)
	if mc.cfg.WantLinks != nil {
		if want := ts.t.AdoptedParents(); !slices.Equal(want, ts.wanted) {
			ts.wanted = want
			mc.cfg.WantLinks(want)
		}
	}
}

// publishTreesSoon publishes the trees once the loop has taken the
// messages queued before (loop only).
func (mc *Plane) publishTreesSoon() {
	ts := &mc.trees
	if ts.publishing {
		return
	}
	ts.publishing = true
	if !mc.loop.TryPost(func() {
		ts.publishing = false
		mc.publishTrees(time.Now(), false)
	}) {
		ts.publishing = false
		mc.publishTrees(time.Now(), false)
	}
}

// sendTree sends tree messages, each to its node (routed when not linked).
func (mc *Plane) sendTree(out []topology.TreeSend) {
	for _, s := range out {
		mb, err := s.Msg.MarshalBinary()
		if err != nil {
			mc.log.Error("tree message", "err", err)
			continue
		}
		mc.trees.sent.Add(1)
		mc.log.Debug("tree message", "kind", s.Msg.Kind, "group", s.Msg.Group.String(), "to", s.To.Short())
		if err := mc.cfg.Data.SendControl(s.To, append([]byte{dataplane.KindTree}, mb...)); err != nil {
			mc.log.Debug("tree message not sent", "to", s.To.Short(), "err", err)
		}
	}
}

// onTree takes a tree message from a node (a reader goroutine).
func (mc *Plane) onTree(from nodeid.ID, payload []byte, _ bool) error {
	var m topology.TreeMsg
	if err := m.UnmarshalBinary(payload[1:]); err != nil {
		mc.trees.badMsgs.Add(1)
		return err
	}
	mc.trees.recv.Add(1)
	// Never blocks the reader: a tree message the loop has no room for
	// is dropped (soft state: the sender repeats it at its next refresh).
	if !mc.loop.TryPost(func() {
		rt := mc.trees.rt()
		if rt == nil {
			return
		}
		switch m.Kind {
		case topology.TreeQuery:
			mc.onTreeQuery(from, m.Group)
			return
		case topology.TreeInfo:
			mc.onTreeInfo(from, &m)
			return
		}
		mc.sendTree(mc.trees.t.Receive(rt, from, &m, time.Now()))
		if n := mc.trees.t.Refused(); n != mc.trees.refused.Load() {
			mc.trees.refused.Store(n)
			mc.trees.refusedLog.Log("from", from.Short(), "group", m.Group.String())
		}
		mc.publishTreesSoon()
	}) {
		mc.trees.queueFull.Add(1)
	}
	return nil
}

// TreeForward implements dataplane.Multicast for frames of a group's tree
// (reader goroutines).
func (mc *Plane) TreeForward(p *tap.Parsed, frame []byte, from nodeid.ID, along bool, dst []nodeid.ID) ([]nodeid.ID, dataplane.TreeVerdict) {
	group, src, ok := p.Group()
	if !ok || linkScope(group) {
		return dst, dataplane.TreeVerdict{}
	}
	st := mc.state.Load()
	v := dataplane.TreeVerdict{Key: topology.GroupKey(group)}
	if !along {
		from = nodeid.ID{}
	}
	n := len(dst)
	dst, local, stray := st.trees.Forward(group, src, from, dst)
	if stray || !st.trees.On(group) {
		if along {
			select {
			case mc.trees.strays <- strayKey{from, group}:
			default: // answered at the next one
			}
		}
		return dst[:n], v
	}
	st.stats.get(group).add(len(dst)-n, len(frame), true)
	v.On, v.Local = true, local
	return dst, v
}
