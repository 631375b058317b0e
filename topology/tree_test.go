package topology

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// nearestTo is the node of ids nearest key on the ring: the root.
func nearestTo(ids []nodeid.ID, key nodeid.ID) nodeid.ID {
	best := ids[0]
	for _, id := range ids[1:] {
		if c := ringDist(load(id), load(key)).cmp(ringDist(load(best), load(key))); c < 0 || c == 0 && cw(load(key), load(id)) == ringDist(load(id), load(key)) {
			best = id
		}
	}
	return best
}

func onTree(s *treeSim, g netip.Addr) (n int) {
	for _, tr := range s.trees {
		if tr.groups[g] != nil {
			n++
		}
	}
	return n
}

// The root is the node nearest the key; a frame from a member, from a
// forwarder and from off the tree reaches every member once; leaving
// leaves no state anywhere.
func TestTreeJoinForwardLeave(t *testing.T) {
	s := newTreeSim(200, 8, 3)
	g := netip.MustParseAddr("239.5.5.5")
	members := []nodeid.ID{s.ids[10], s.ids[70], s.ids[150], s.ids[199]}
	for _, m := range members {
		s.setLocal(m, g, filter.Filter{Mode: filter.Exclude})
	}
	root := nearestTo(s.ids, GroupKey(g))
	if tg := s.trees[s.index[root]].groups[g]; tg == nil || !tg.root {
		t.Fatalf("the node nearest the key (%s) is not the root", root.Short())
	}
	roots := 0
	for _, tr := range s.trees {
		if tg := tr.groups[g]; tg != nil && tg.root {
			roots++
		}
	}
	if roots != 1 {
		t.Fatalf("%d roots", roots)
	}
	src := netip.MustParseAddr("10.0.0.1")
	for _, from := range []nodeid.ID{members[0], root, s.ids[100]} {
		got, _, _, _ := s.frame(from, g, src)
		for _, m := range members {
			if m != from && got[m] != 1 {
				t.Errorf("frame from %s: member %s got %d copies", from.Short(), m.Short(), got[m])
			}
		}
		for id, n := range got {
			if !containsID(members, id) {
				t.Errorf("frame from %s: %s, no member, delivered %d", from.Short(), id.Short(), n)
			}
		}
	}
	for _, m := range members {
		s.setLocal(m, g, filter.Filter{})
	}
	if n := onTree(s, g); n != 0 {
		t.Fatalf("%d nodes still on the tree after every member left", n)
	}
}

func containsID(ids []nodeid.ID, id nodeid.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Source filters go up the tree aggregated: a frame goes only down the
// branches that admit its source.
func TestTreeSourceFilters(t *testing.T) {
	s := newTreeSim(200, 8, 4)
	g := netip.MustParseAddr("232.1.1.1")
	s1, s2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a, b, src := s.ids[20], s.ids[120], s.ids[60]
	s.setLocal(a, g, filter.Filter{Mode: filter.Include, Sources: []netip.Addr{s1}})
	s.setLocal(b, g, filter.Filter{Mode: filter.Exclude, Sources: []netip.Addr{s1}})
	got, _, _, _ := s.frame(src, g, s1)
	if got[a] != 1 || got[b] != 0 {
		t.Errorf("from %s: a got %d (wants it), b %d (excludes it)", s1, got[a], got[b])
	}
	got, _, _, _ = s.frame(src, g, s2)
	if got[a] != 0 || got[b] != 1 {
		t.Errorf("from %s: a got %d (does not want it), b %d (wants it)", s2, got[a], got[b])
	}
	if f := unionFilter(filter.Filter{Mode: filter.Include, Sources: []netip.Addr{s1}}, filter.Filter{Mode: filter.Exclude, Sources: []netip.Addr{s1, s2}}); !f.Equal(filter.Filter{Mode: filter.Exclude, Sources: []netip.Addr{s2}}) {
		t.Errorf("INCLUDE{s1} ∪ EXCLUDE{s1,s2} = %v", f)
	}
}

// No node sends more than fanout copies of a frame; the children beyond
// it are redirected below the others.
func TestTreeFanout(t *testing.T) {
	const fanout = 3
	s := newTreeSim(300, fanout, 5)
	g := netip.MustParseAddr("239.6.6.6")
	var members []nodeid.ID
	for i := 0; i < 300; i += 4 {
		members = append(members, s.ids[i])
		s.setLocal(s.ids[i], g, filter.Filter{Mode: filter.Exclude})
	}
	adopted := 0
	for _, tr := range s.trees {
		if tg := tr.groups[g]; tg != nil {
			if tg.adopted {
				adopted++
			}
			if len(tg.children) > fanout {
				t.Errorf("%s has %d children", tr.self.Short(), len(tg.children))
			}
		}
	}
	if adopted == 0 {
		t.Error("no child was redirected: the test shows nothing")
	}
	got, _, sent, _ := s.frame(members[0], g, netip.MustParseAddr("10.0.0.1"))
	for id, n := range sent {
		if n > fanout {
			t.Errorf("%s sent %d copies", id.Short(), n)
		}
	}
	for _, m := range members[1:] {
		if got[m] != 1 {
			t.Errorf("member %s got %d copies", m.Short(), got[m])
		}
	}
}

// Soft state: a child that stops refreshing is dropped after three
// refreshes, and the branch it held up goes with it.
func TestTreeExpiry(t *testing.T) {
	s := newTreeSim(100, 8, 6)
	g := netip.MustParseAddr("239.7.7.7")
	m := s.ids[42]
	s.setLocal(m, g, filter.Filter{Mode: filter.Exclude})
	if onTree(s, g) < 2 {
		t.Skip("the member is the root")
	}
	// The member vanishes without a prune; the others go on ticking.
	s.trees[s.index[m]] = NewTrees(m, 8)
	for range 4 {
		s.now = s.now.Add(TreeRefresh)
		s.tickAll()
	}
	if n := onTree(s, g); n != 0 {
		t.Fatalf("%d nodes still on the tree of a member gone silent", n)
	}
}

// A cycle of adopted edges (two nodes each the other's parent) is broken
// by the depth count: both end up on the greedy tree.
func TestTreeCycleBroken(t *testing.T) {
	for _, aAdopted := range []bool{true, false} {
		testTreeCycle(t, aAdopted)
	}
}

// testTreeCycle: a and b each the other's parent, b's edge adopted, a's
// adopted too or greedy.
func testTreeCycle(t *testing.T, aAdopted bool) {
	s := newTreeSim(100, 8, 7)
	g := netip.MustParseAddr("239.8.8.8")
	a, b := s.ids[10], s.ids[60]
	ta, tb := s.trees[s.index[a]], s.trees[s.index[b]]
	for _, x := range []struct {
		tr      *Trees
		parent  nodeid.ID
		adopted bool
	}{{ta, b, aAdopted}, {tb, a, true}} {
		tg := x.tr.group(g)
		tg.local = filter.Filter{Mode: filter.Exclude}
		tg.parent, tg.adopted, tg.depth, tg.acked = x.parent, x.adopted, 1, s.now
		tg.children[x.parent] = &treeChild{filter: filter.Filter{Mode: filter.Exclude}, heard: s.now}
	}
	s.deliver(b, []TreeSend{{To: a, Msg: TreeMsg{Kind: TreeAck, Group: g, Depth: 1}}})
	for _, x := range []*Trees{ta, tb} {
		if tg := x.groups[g]; tg == nil || tg.depth > MaxTreeDepth {
			t.Fatalf("%s: %+v", x.self.Short(), tg)
		}
	}
	if ta.groups[g].parent == b && tb.groups[g].parent == a {
		t.Fatalf("a adopted %v: the cycle stands", aAdopted)
	}
	got, _, _, _ := s.frame(s.ids[90], g, netip.MustParseAddr("10.0.0.1"))
	if got[a] != 1 || got[b] != 1 {
		t.Fatalf("after the cycle: a got %d, b %d", got[a], got[b])
	}
	_ = time.Second
}

func treeSamples() map[string]*TreeMsg {
	return map[string]*TreeMsg{
		"join":       {Kind: TreeJoin, Group: ip("239.1.1.1"), Filter: excl()},
		"join-ssm":   {Kind: TreeJoin, Group: ip("ff3e::1"), Filter: incl("fd00::1", "fd00::2")},
		"join-avoid": {Kind: TreeJoin, Group: ip("232.1.1.1"), Filter: incl("10.0.0.1"), Avoid: nodeID(9)},
		"prune":      {Kind: TreePrune, Group: ip("232.1.1.1")},
		"redirect":   {Kind: TreeRedirect, Group: ip("239.1.1.1"), To: nodeID(3)},
		"ack":        {Kind: TreeAck, Group: ip("ff15::9"), Depth: 7},
		"query":      {Kind: TreeQuery, Group: ip("239.1.1.1")},
		"info-root":  {Kind: TreeInfo, Group: ip("239.1.1.1"), Root: true, Children: []nodeid.ID{nodeID(1), nodeID(2)}},
		"info":       {Kind: TreeInfo, Group: ip("ff3e::1"), Depth: 3, Parent: nodeID(5), Children: []nodeid.ID{nodeID(1)}},
		"info-off":   {Kind: TreeInfo, Group: ip("239.1.1.1")},
	}
}

func TestTreeWire(t *testing.T) {
	for name, m := range treeSamples() {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got TreeMsg
		if err := got.UnmarshalBinary(b); err != nil || got.Kind != m.Kind || got.Group != m.Group || !got.Filter.Equal(m.Filter) || got.To != m.To || got.Depth != m.Depth || got.Avoid != m.Avoid ||
			got.Root != m.Root || got.Parent != m.Parent || !slices.Equal(got.Children, m.Children) {
			t.Errorf("%s: decoded %+v (%v), sent %+v", name, got, err, m)
		}
	}
	for name, m := range map[string]*TreeMsg{
		"kind 0":            {Group: ip("239.1.1.1")},
		"unicast group":     {Kind: TreePrune, Group: ip("10.0.0.1")},
		"redirect to no":    {Kind: TreeRedirect, Group: ip("239.1.1.1")},
		"deep ack":          {Kind: TreeAck, Group: ip("239.1.1.1"), Depth: MaxTreeDepth + 2},
		"INCLUDE{} join":    {Kind: TreeJoin, Group: ip("239.1.1.1"), Filter: incl()},
		"prune with to":     {Kind: TreePrune, Group: ip("239.1.1.1"), To: nodeID(1)},
		"ack with avoid":    {Kind: TreeAck, Group: ip("239.1.1.1"), Avoid: nodeID(1)},
		"root with parent":  {Kind: TreeInfo, Group: ip("239.1.1.1"), Root: true, Parent: nodeID(1)},
		"children unsorted": {Kind: TreeInfo, Group: ip("239.1.1.1"), Children: []nodeid.ID{nodeID(2), nodeID(1)}},
		"child the parent":  {Kind: TreeInfo, Group: ip("239.1.1.1"), Parent: nodeID(1), Children: []nodeid.ID{nodeID(1)}},
		"join with root":    {Kind: TreeJoin, Group: ip("239.1.1.1"), Filter: excl(), Root: true},
		"unsorted filter":   {Kind: TreeJoin, Group: ip("232.1.1.1"), Filter: incl("10.0.0.2", "10.0.0.1")},
	} {
		if _, err := m.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// FuzzTreeMsg: any bytes decode to a message that re-encodes to the
// same bytes, or to an error; and whatever decodes, a node's trees take
// without harm.
func FuzzTreeMsg(f *testing.F) {
	for _, m := range treeSamples() {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m TreeMsg
		if err := m.UnmarshalBinary(data); err != nil {
			return
		}
		b, err := m.MarshalBinary()
		if err != nil || string(b) != string(data) {
			t.Fatalf("decoded %+v, re-encoded % x (%v), from % x", m, b, err, data)
		}
		s := newTreeSim(20, 2, 1)
		at := s.ids[5]
		i := s.index[at]
		for _, o := range s.trees[i].Receive(s.routes[i], s.ids[6], &m, s.now) {
			if o.To.IsZero() {
				t.Fatalf("a message to no node: %+v", o)
			}
		}
		s.trees[i].Tick(s.routes[i], s.now.Add(time.Hour))
	})
}

// A frame from a node that is not a tree neighbour (it holds a stale
// edge to this one) goes nowhere, and says so.
func TestTreeStrayFrame(t *testing.T) {
	s := newTreeSim(50, 8, 8)
	g := netip.MustParseAddr("239.9.9.9")
	m := s.ids[7]
	s.setLocal(m, g, filter.Filter{Mode: filter.Exclude})
	out, local, stray := s.trees[s.index[m]].Forward(g, netip.MustParseAddr("10.0.0.1"), s.ids[30], nil)
	if len(out) != 0 || local || !stray {
		t.Fatalf("from a stranger: to %d nodes, local %v, stray %v", len(out), local, stray)
	}
	if _, local, stray := s.trees[s.index[m]].Forward(g, netip.MustParseAddr("10.0.0.1"), nodeid.ID{}, nil); !local || stray {
		t.Fatalf("from the TAP: local %v, stray %v", local, stray)
	}
}

// treeEntries recounts what the bounds count.
func treeEntries(tr *Trees) (entries int, byChild map[nodeid.ID]int) {
	byChild = map[nodeid.ID]int{}
	for _, tg := range tr.groups {
		for id, c := range tg.children {
			entries += entriesOf(c.filter)
			byChild[id]++
		}
	}
	return entries, byChild
}

// One node's joins can take at most maxChildGroups groups of another's
// tree state; the count returns to nothing when they are pruned.
func TestTreeBounds(t *testing.T) {
	s := newTreeSim(20, 8, 9)
	at := s.ids[3]
	tr := s.trees[s.index[at]]
	rt := s.routes[s.index[at]]
	var child nodeid.ID // not linked: never this node's parent on a tree
	for _, id := range s.ids {
		if id != at && !rt.Linked(id) {
			child = id
		}
	}
	var groups []netip.Addr
	for i := range maxChildGroups + 100 {
		g := netip.AddrFrom4([4]byte{239, 50, byte(i >> 8), byte(i)})
		groups = append(groups, g)
		tr.Receive(rt, child, &TreeMsg{Kind: TreeJoin, Group: g, Filter: filter.Filter{Mode: filter.Exclude}}, s.now)
	}
	if len(tr.groups) != maxChildGroups || tr.Refused() != 100 {
		t.Fatalf("%d groups held, %d refused", len(tr.groups), tr.Refused())
	}
	if e, by := treeEntries(tr); e != tr.entries || by[child] != tr.byChild[child] {
		t.Fatalf("counted %d entries, %d for the child; hold %d, %d", tr.entries, tr.byChild[child], e, by[child])
	}
	for _, g := range groups {
		tr.Receive(rt, child, &TreeMsg{Kind: TreePrune, Group: g}, s.now)
	}
	if len(tr.groups) != 0 || tr.entries != 0 || len(tr.byChild) != 0 || len(tr.entriesBy) != 0 {
		t.Fatalf("after the prunes: %d groups, %d entries, %d children counted", len(tr.groups), tr.entries, len(tr.byChild))
	}

	// Joins with many sources: one node holds at most maxChildEntries,
	// far fewer groups than maxChildGroups.
	var sources []netip.Addr
	for i := range 255 {
		sources = append(sources, netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)}))
	}
	wide := filter.Filter{Mode: filter.Include, Sources: sources}
	held := 0
	for i := range maxChildGroups {
		g := netip.AddrFrom4([4]byte{232, 50, byte(i >> 8), byte(i)})
		tr.Receive(rt, child, &TreeMsg{Kind: TreeJoin, Group: g, Filter: wide}, s.now)
		if tr.groups[g] != nil {
			held++
		}
	}
	if want := maxChildEntries / entriesOf(wide); held != want || tr.entriesBy[child] > maxChildEntries {
		t.Fatalf("joins of 256 entries each: %d groups held (%d entries), want %d", held, tr.entriesBy[child], want)
	}
	if e, _ := treeEntries(tr); e != tr.entries || e != tr.entriesBy[child] {
		t.Fatalf("counted %d entries, %d for the child; hold %d", tr.entries, tr.entriesBy[child], e)
	}
}

// TestTreeTableAgrees: the data path's copy forwards as the trees do, for
// every node, from every tree neighbour, from off the tree and from a
// stranger, with any-source and source-specific members.
func TestTreeTableAgrees(t *testing.T) {
	s := newTreeSim(200, 3, 5)
	g := netip.MustParseAddr("239.9.9.9")
	ssm := netip.MustParseAddr("232.1.1.1")
	src := netip.MustParseAddr("10.0.0.1")
	for i := 0; i < 200; i += 7 {
		s.setLocal(s.ids[i], g, filter.Filter{Mode: filter.Exclude})
		f := filter.Filter{Mode: filter.Include, Sources: []netip.Addr{src}}
		if i%2 == 0 {
			f.Sources = []netip.Addr{netip.MustParseAddr("10.0.0.2")}
		}
		s.setLocal(s.ids[i], ssm, f)
	}
	checked := 0
	check := func() {
		for _, tr := range s.trees {
			tt := tr.Table()
			for _, role := range tr.Roles() {
				froms := append([]nodeid.ID{{}, s.ids[199]}, role.Children...)
				if !role.Parent.IsZero() {
					froms = append(froms, role.Parent)
				}
				for _, from := range froms {
					want, wl, ws := tr.Forward(role.Group, src, from, nil)
					got, gl, gs := tt.Forward(role.Group, src, from, nil)
					if !slices.Equal(want, got) || wl != gl || ws != gs {
						t.Fatalf("%s from %s: trees %v %v %v, table %v %v %v", role.Group, from.Short(), want, wl, ws, got, gl, gs)
					}
					checked++
				}
				if !tt.On(role.Group) {
					t.Fatalf("table not on %s", role.Group)
				}
			}
		}
	}
	check()
	// Changes after the tables were built: members leave, others join,
	// filters change, a node dies; the next tables follow.
	for i := 0; i < 200; i += 14 {
		s.setLocal(s.ids[i], g, filter.Filter{})
		s.setLocal(s.ids[i+1], g, filter.Filter{Mode: filter.Exclude})
		s.setLocal(s.ids[i], ssm, filter.Filter{Mode: filter.Include, Sources: []netip.Addr{src, netip.MustParseAddr("10.0.0.3")}})
	}
	s.tickAll()
	check()
	if checked < 100 {
		t.Fatalf("only %d cases checked", checked)
	}
}

// A join that is lost (or its ack, or a busy parent drops it) is sent
// again after JoinRetry, not only at the next refresh; once acknowledged,
// not until the refresh.
func TestTreeJoinRetry(t *testing.T) {
	g := netip.MustParseAddr("239.3.3.3")
	key := GroupKey(g)
	// The parent is the only link, and nearer the key than self.
	self, parent := key, key
	self[31] ^= 0x80
	parent[31] ^= 0x01
	rt := NewRoutes(self, []nodeid.ID{parent}, nil)
	tr := NewTrees(self, 4)
	now := time.Unix(1000, 0)
	joins := func(out []TreeSend) int {
		n := 0
		for _, s := range out {
			if s.To == parent && s.Msg.Kind == TreeJoin {
				n++
			}
		}
		return n
	}
	if n := joins(tr.SetLocal(rt, g, filter.Filter{Mode: filter.Exclude}, now)); n != 1 {
		t.Fatalf("%d joins at first", n)
	}
	if n := joins(tr.Tick(rt, now.Add(JoinRetry/2))); n != 0 {
		t.Fatalf("%d joins before JoinRetry", n)
	}
	if n := joins(tr.Tick(rt, now.Add(JoinRetry))); n != 1 {
		t.Fatalf("%d joins after JoinRetry unanswered, want 1", n)
	}
	tr.Receive(rt, parent, &TreeMsg{Kind: TreeAck, Group: g, Depth: 0}, now.Add(JoinRetry))
	if n := joins(tr.Tick(rt, now.Add(3*JoinRetry))); n != 0 {
		t.Fatalf("%d joins after the ack, before the refresh", n)
	}
	if n := joins(tr.Tick(rt, now.Add(JoinRetry+TreeRefresh))); n != 1 {
		t.Fatalf("%d joins at the refresh", n)
	}
}

// TestTreeRedirectToLostChild: C's parent X dies. C finds out first (it
// was sending to X) and joins X's parent P, which is full and has not
// noticed: it redirects C to X, its child nearest C. C does not follow a
// redirect to the node it just lost; it joins P again naming X to avoid,
// and P takes it at once (before, C waited 2 JoinRetry for an ack from
// the dead X: its subtree dark ~4 s).
func TestTreeRedirectToLostChild(t *testing.T) {
	g := netip.MustParseAddr("239.4.4.4")
	key := GroupKey(g)
	at := func(b byte) nodeid.ID { id := key; id[0] ^= b; return id }
	p, x, c := at(0x01), at(0x02), at(0x40) // nearest the key first
	trees := map[nodeid.ID]*Trees{p: NewTrees(p, 1), x: NewTrees(x, 4), c: NewTrees(c, 4)}
	routes := map[nodeid.ID]*Routes{
		p: NewRoutes(p, []nodeid.ID{x, c}, nil),
		x: NewRoutes(x, []nodeid.ID{p, c}, nil),
		c: NewRoutes(c, []nodeid.ID{x}, nil), // X is C's way toward the key
	}
	dead := map[nodeid.ID]bool{}
	now := time.Unix(1000, 0)
	var deliver func(from nodeid.ID, out []TreeSend)
	deliver = func(from nodeid.ID, out []TreeSend) {
		for _, s := range out {
			if !dead[s.To] {
				deliver(s.To, trees[s.To].Receive(routes[s.To], from, &s.Msg, now))
			}
		}
	}
	members := filter.Filter{Mode: filter.Exclude}
	deliver(x, trees[x].SetLocal(routes[x], g, members, now))
	deliver(c, trees[c].SetLocal(routes[c], g, members, now))
	parentOf := func(id nodeid.ID) (nodeid.ID, bool) {
		tg := trees[id].groups[g]
		return tg.parent, tg.unacked
	}
	if par, unacked := parentOf(c); par != x || unacked {
		t.Fatalf("C's parent %v (unacked %v), want X", par.Short(), unacked)
	}
	if par, _ := parentOf(x); par != p {
		t.Fatalf("X's parent %v, want P", par.Short())
	}
	// X dies; C's link to it goes and one to P comes; P has not noticed.
	dead[x] = true
	now = now.Add(time.Second)
	routes[c] = NewRoutes(c, []nodeid.ID{p}, nil)
	deliver(c, trees[c].Tick(routes[c], now))
	if par, unacked := parentOf(c); par != p || unacked {
		t.Fatalf("after X died, C's parent is %v (unacked %v), want P at once", par.Short(), unacked)
	}
	if !slices.Contains(trees[p].Roles()[0].Children, c) {
		t.Fatalf("P's children %v, want C among them", trees[p].Roles()[0].Children)
	}
	// A redirect to the node avoided (an answer to an earlier join): no
	// message, the parent kept. One to another node C cannot take: off
	// the tree until the next Tick, no message (no ping-pong between two
	// lost children of the parent's at the round trip).
	tg := trees[c].groups[g]
	tg.avoid = x
	if out := trees[c].Receive(routes[c], p, &TreeMsg{Kind: TreeRedirect, Group: g, To: x}, now); len(out) != 0 || tg.parent != p {
		t.Fatalf("a second redirect to the node avoided: sent %v, parent %v", out, tg.parent.Short())
	}
	y := at(0x03)
	trees[c].markLost(y, now)
	if out := trees[c].Receive(routes[c], p, &TreeMsg{Kind: TreeRedirect, Group: g, To: y}, now); len(out) != 0 || !tg.parent.IsZero() {
		t.Fatalf("a redirect to a second lost node: sent %v, parent %v; want off the tree", out, tg.parent.Short())
	}
	if out := trees[c].Tick(routes[c], now.Add(time.Second)); len(out) != 1 || out[0].To != p || out[0].Msg.Kind != TreeJoin || !out[0].Msg.Avoid.IsZero() {
		t.Fatalf("the next Tick: sent %v, want a plain join to P", out)
	}
}

// TestTreeDetour: a node with members and no link nearer the group's
// key (a hole in the ring: after a restart, a link not up yet) is not
// the root when a link announced a node nearer the key: it joins that
// node (routed, through the link). Before, it made itself the root of a
// tree nobody else was on until the link came (30 s in the soak). When a
// link nearer the key comes, the join moves to it; a false root finds
// its detour when a link announces one.
func TestTreeDetour(t *testing.T) {
	g := netip.MustParseAddr("239.6.6.6")
	key := GroupKey(g)
	at := func(b byte) nodeid.ID { id := key; id[0] ^= b; return id }
	n, s, a := at(0x01), at(0x10), at(0x80) // n nearest the key, a farthest
	tr := NewTrees(s, 4)
	now := time.Unix(1000, 0)
	members := filter.Filter{Mode: filter.Exclude}
	out := tr.SetLocal(NewRoutes(s, []nodeid.ID{a}, [][]nodeid.ID{{n}}), g, members, now)
	tg := tr.groups[g]
	if tg.root || tg.parent != n || !tg.detour || len(out) != 1 || out[0].To != n || out[0].Msg.Kind != TreeJoin {
		t.Fatalf("root %v, parent %v, detour %v, sent %v: want a join to the node nearer the key", tg.root, tg.parent.Short(), tg.detour, out)
	}
	tr.Receive(NewRoutes(s, []nodeid.ID{a}, [][]nodeid.ID{{n}}), n, &TreeMsg{Kind: TreeAck, Group: g, Depth: 0}, now)
	// The detour parent is a link the node asks for; when it comes (the
	// next hop now), the edge stays, and so does the link: no prune.
	if got := tr.AdoptedParents(); !slices.Equal(got, []nodeid.ID{n}) {
		t.Fatalf("links asked for: %v, want the detour parent", got)
	}
	now = now.Add(time.Second)
	for _, o := range tr.Tick(NewRoutes(s, []nodeid.ID{a, n}, nil), now) {
		if o.Msg.Kind == TreePrune {
			t.Fatalf("a prune to %v when the detour became a link", o.To.Short())
		}
	}
	if got := tr.AdoptedParents(); tg.parent != n || !tg.detour || !slices.Equal(got, []nodeid.ID{n}) {
		t.Fatalf("parent %v detour %v, links asked for %v: want n, kept", tg.parent.Short(), tg.detour, got)
	}
	// A link nearer the key than the detour parent: the greedy edge,
	// the detour pruned.
	m := at(0x00)
	m[31] ^= 1
	out = tr.Tick(NewRoutes(s, []nodeid.ID{a, n, m}, nil), now.Add(time.Second))
	if tg.parent != m || tg.detour || tg.adopted || len(out) != 2 || out[0].Msg.Kind != TreePrune || out[0].To != n {
		t.Fatalf("parent %v detour %v, sent %v: want a prune to n and a join to the next hop", tg.parent.Short(), tg.detour, out)
	}
	if tr.unsure(n, now) {
		t.Errorf("the detour parent left for a nearer link is taken for lost")
	}

	// A root that learns of a node nearer the key joins it.
	tr2 := NewTrees(s, 4)
	tr2.SetLocal(NewRoutes(s, []nodeid.ID{a}, nil), g, members, now)
	if tg2 := tr2.groups[g]; !tg2.root {
		t.Fatalf("not the root with no node known nearer the key")
	}
	now = now.Add(time.Second)
	out = tr2.Tick(NewRoutes(s, []nodeid.ID{a}, [][]nodeid.ID{{n}}), now)
	if tg2 := tr2.groups[g]; tg2.root || tg2.parent != n || len(out) != 1 || out[0].Msg.Kind != TreeJoin {
		t.Fatalf("root %v parent %v sent %v, want a join to n", tg2.root, tg2.parent.Short(), out)
	}
}

// TestTreePruneFromParent: a parent that does not hold this node (it
// prunes the node's frames as strays) gets a join again at once; the
// node stays on the tree (before: ignored, the subtree dark until the
// next refresh, 30 s).
func TestTreePruneFromParent(t *testing.T) {
	g := netip.MustParseAddr("239.7.7.7")
	key := GroupKey(g)
	at := func(b byte) nodeid.ID { id := key; id[0] ^= b; return id }
	p, x := at(0x01), at(0x10)
	rt := NewRoutes(x, []nodeid.ID{p}, nil)
	tr := NewTrees(x, 4)
	now := time.Unix(1000, 0)
	tr.SetLocal(rt, g, filter.Filter{Mode: filter.Exclude}, now)
	tr.Receive(rt, p, &TreeMsg{Kind: TreeAck, Group: g}, now)
	now = now.Add(time.Second)
	out := tr.Receive(rt, p, &TreeMsg{Kind: TreePrune, Group: g}, now)
	if len(out) != 1 || out[0].To != p || out[0].Msg.Kind != TreeJoin {
		t.Fatalf("a prune from the parent: sent %v, want a join to it", out)
	}
	if tg := tr.groups[g]; tg.parent != p {
		t.Fatalf("left the tree: parent %v", tg.parent.Short())
	}
}

// TestTreeAdoptedParents: the parents a node was redirected to are the
// links it asks for, the most used first; greedy parents are not.
func TestTreeAdoptedParents(t *testing.T) {
	self, greedy := nodeID(1), nodeID(2)
	tr := NewTrees(self, 4)
	i := 0
	adopt := func(p nodeid.ID, groups int) {
		for range groups {
			tg := tr.group(netip.AddrFrom4([4]byte{239, 9, byte(i >> 8), byte(i)}))
			tg.parent, tg.adopted = p, p != greedy
			i++
		}
	}
	adopt(greedy, 3)
	var ps []nodeid.ID
	for j := range MaxTreeLinks + 2 {
		ps = append(ps, nodeID(byte(10+j)))
		adopt(ps[j], 1+j) // the later, the more groups
	}
	want := slices.Clone(ps[2:]) // the MaxTreeLinks with most groups
	if got := tr.AdoptedParents(); !slices.Equal(got, want) {
		t.Fatalf("adopted parents %v, want %v (greedy parents never)", got, want)
	}
	// Sticky: a parent not chosen gaining groups takes no place...
	adopt(ps[0], 50)
	if got := tr.AdoptedParents(); !slices.Equal(got, want) {
		t.Fatalf("after another parent gained groups: %v, want still %v", got, want)
	}
	// ...until one chosen is no longer a parent.
	for _, tg := range tr.groups {
		if tg.parent == ps[5] {
			tg.parent = nodeid.ID{}
		}
	}
	got := tr.AdoptedParents()
	if len(got) != MaxTreeLinks || !slices.Contains(got, ps[0]) || slices.Contains(got, ps[5]) {
		t.Fatalf("after %v left: %v, want %v in its place", ps[5].Short(), got, ps[0].Short())
	}
}

// TestTreeNewParentGetsTime: a node that leaves a parent for want of an
// ack gives the next one its own JoinRetry (the timer of the old join is
// not the new one's: before, the detour taken next was left at once).
func TestTreeNewParentGetsTime(t *testing.T) {
	g := netip.MustParseAddr("239.6.6.7")
	key := GroupKey(g)
	at := func(b byte) nodeid.ID { id := key; id[0] ^= b; return id }
	n, x, s, a := at(0x01), at(0x02), at(0x10), at(0x80)
	rt := NewRoutes(s, []nodeid.ID{a}, [][]nodeid.ID{{n}})
	tr := NewTrees(s, 4)
	now := time.Unix(1000, 0)
	tr.SetLocal(rt, g, filter.Filter{Mode: filter.Exclude}, now) // a detour to n
	tr.Receive(rt, n, &TreeMsg{Kind: TreeRedirect, Group: g, To: x}, now)
	tg := tr.groups[g]
	if tg.parent != x || !tg.adopted {
		t.Fatalf("after the redirect: parent %v", tg.parent.Short())
	}
	now = now.Add(2 * JoinRetry) // x never answers
	tr.Tick(rt, now)
	if tg.parent != n || !tg.detour {
		t.Fatalf("after x stayed silent: parent %v detour %v, want the detour to n", tg.parent.Short(), tg.detour)
	}
	tr.Tick(rt, now.Add(100*time.Millisecond))
	if tg.parent != n {
		t.Fatalf("the new parent left at the next Tick: parent %v", tg.parent.Short())
	}
}

// TestTreeLossyParentDetour: a parent routed around for loss (not
// silence) is left, but not taken for lost: with no link nearer the key,
// the node goes back to it as a detour through another link, without a
// prune; a silent one is taken for lost (the node is the root then); a
// lossy one is left for a link nearer the key when there is one.
func TestTreeLossyParentDetour(t *testing.T) {
	g := netip.MustParseAddr("239.6.6.8")
	key := GroupKey(g)
	at := func(b byte) nodeid.ID { id := key; id[0] ^= b; return id }
	p, q, s, a := at(0x01), at(0x02), at(0x10), at(0x80)
	lossy := map[nodeid.ID]bool{}
	start := func() (*Trees, *treeGroup, time.Time) {
		tr := NewTrees(s, 4)
		tr.SetLossy(func(id nodeid.ID) bool { return lossy[id] })
		now := time.Unix(1000, 0)
		rt := NewRoutes(s, []nodeid.ID{a, p}, nil)
		tr.SetLocal(rt, g, filter.Filter{Mode: filter.Exclude}, now)
		tr.Receive(rt, p, &TreeMsg{Kind: TreeAck, Group: g}, now)
		return tr, tr.groups[g], now
	}
	aroundP := NewRoutes(s, []nodeid.ID{a}, [][]nodeid.ID{{p}}) // p routed around; a announces it
	tr, tg, now := start()
	lossy[p] = true
	for _, o := range tr.Tick(aroundP, now.Add(time.Second)) {
		if o.Msg.Kind == TreePrune {
			t.Fatalf("a lossy parent taken again as a detour: pruned")
		}
	}
	if tg.parent != p || !tg.detour || tg.root {
		t.Fatalf("a lossy parent: parent %v detour %v root %v, want it again as a detour", tg.parent.Short(), tg.detour, tg.root)
	}
	tr, tg, now = start()
	lossy[p] = false // silent
	tr.Tick(aroundP, now.Add(time.Second))
	if !tg.root || !tr.unsure(p, now) {
		t.Fatalf("a silent parent: parent %v root %v, want the root, the parent lost", tg.parent.Short(), tg.root)
	}
	tr, tg, now = start()
	lossy[p] = true
	tr.Tick(NewRoutes(s, []nodeid.ID{a, q}, [][]nodeid.ID{{p}, nil}), now.Add(time.Second))
	if tg.parent != q {
		t.Fatalf("a lossy parent and a link nearer the key: parent %v, want the link", tg.parent.Short())
	}
}
