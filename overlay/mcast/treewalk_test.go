package mcast

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// TestTreeWalk: the walk asks this node's tree neighbours, then the
// nodes their answers name, and returns every answer; an answer from a
// node not asked is ignored; a query is answered with this node's place.
func TestTreeWalk(t *testing.T) {
	self, a, b, stranger := nodeid.ID{0x80}, nodeid.ID{0x40}, nodeid.ID{0x20}, nodeid.ID{0x55} // a: not a link, never the next hop
	mc, d := treePlane(t, self, nodeid.ID{0x10}, nodeid.ID{0x30})
	defer runPlane(mc)()

	g := netip.MustParseAddr("239.4.4.5")
	deliver := func(from nodeid.ID, m topology.TreeMsg) {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.handlers[dataplane.KindTree](from, append([]byte{dataplane.KindTree}, b...), true); err != nil {
			t.Fatal(err)
		}
		mc.loop.Call(func() {})
	}
	deliver(a, topology.TreeMsg{Kind: topology.TreeJoin, Group: g, Filter: filter.Filter{Mode: filter.Exclude}})
	var info topology.TreeMsg
	mc.loop.Call(func() { info = mc.trees.t.Info(g) })
	if !slices.Contains(info.Children, a) {
		t.Fatalf("not on the tree with a as a child: %+v", info)
	}
	// The others answer as asked: a has child b; the parent (if any) is
	// the root with this node as its child.
	answer := func(id nodeid.ID) topology.TreeMsg {
		switch id {
		case a:
			return topology.TreeMsg{Kind: topology.TreeInfo, Group: g, Depth: info.Depth + 1, Parent: self, Children: []nodeid.ID{b}}
		case b:
			return topology.TreeMsg{Kind: topology.TreeInfo, Group: g, Depth: info.Depth + 2, Parent: a}
		}
		return topology.TreeMsg{Kind: topology.TreeInfo, Group: g, Root: true, Children: []nodeid.ID{self}}
	}
	result := make(chan *control.TreeWalk, 1)
	go func() {
		w, err := mc.TreeWalk(g, func(nodeid.ID) string { return "" })
		if err != nil {
			t.Error(err)
		}
		result <- w
	}()
	answered := map[nodeid.ID]bool{self: true}
	deadline := time.Now().Add(walkTimeout / 2)
	for {
		var asked []nodeid.ID
		mc.loop.Call(func() {
			if len(mc.walks) > 0 {
				asked = slices.Clone(mc.walks[0].asked)
			}
		})
		for _, id := range asked {
			if !answered[id] {
				answered[id] = true
				deliver(stranger, answer(a)) // not asked: ignored
				deliver(id, answer(id))
			}
		}
		if w := func() *control.TreeWalk {
			select {
			case w := <-result:
				return w
			default:
				return nil
			}
		}(); w != nil {
			if len(w.Unanswered) != 0 || !slices.ContainsFunc(w.Nodes, func(n control.TreeWalkNode) bool { return n.NodeID == b.String() && n.Parent.NodeID == a.String() }) ||
				slices.ContainsFunc(w.Nodes, func(n control.TreeWalkNode) bool { return n.NodeID == stranger.String() }) {
				t.Fatalf("walk: %+v", w)
			}
			want := 3 // this node, a, b
			if !info.Parent.IsZero() {
				want++ // and its parent
			}
			if len(w.Nodes) != want || !w.Nodes[0].Here {
				t.Fatalf("walk of %d nodes (first here: %v), want this node, a, b (and a parent): %+v", len(w.Nodes), w.Nodes[0].Here, w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the walk did not end once all had answered (asked %d)", len(asked))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A query from another node: answered.
	d.mu.Lock()
	before := d.sent[stranger]
	d.mu.Unlock()
	deliver(stranger, topology.TreeMsg{Kind: topology.TreeQuery, Group: g})
	d.mu.Lock()
	after := d.sent[stranger]
	d.mu.Unlock()
	if after != before+1 {
		t.Errorf("a query: %d messages sent back, want 1", after-before)
	}
}

// TestTreeJoinsRefusedCounted: joins beyond the trees' bounds (one
// node's joins in more than 4,096 groups here) are counted where
// ipopctl peers and the metrics show drops.
func TestTreeJoinsRefusedCounted(t *testing.T) {
	self, child := nodeid.ID{0x80}, nodeid.ID{0x40}
	mc, d := treePlane(t, self, nodeid.ID{0x10})
	defer runPlane(mc)()
	for i := range 4096 + 10 {
		g := netip.AddrFrom4([4]byte{239, 60, byte(i >> 8), byte(i)})
		b, _ := (&topology.TreeMsg{Kind: topology.TreeJoin, Group: g, Filter: filter.Filter{Mode: filter.Exclude}}).MarshalBinary()
		if err := d.handlers[dataplane.KindTree](child, append([]byte{dataplane.KindTree}, b...), true); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			mc.loop.Call(func() {}) // the loop's queue keeps up
		}
	}
	mc.loop.Call(func() {})
	if n := mc.Drops()["tree_joins_refused"]; n != 10 {
		t.Errorf("tree_joins_refused %d, want 10", n)
	}
}

// TestTreeWalkStopped: a walk asked of a plane that stopped returns at
// once (the control socket's handler must not hang at shutdown).
func TestTreeWalkStopped(t *testing.T) {
	mc, _ := treePlane(t, nodeid.ID{0x80}, nodeid.ID{0x10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { mc.Run(ctx); close(done) }()
	<-done
	errc := make(chan error, 1)
	go func() {
		_, err := mc.TreeWalk(netip.MustParseAddr("239.1.1.1"), func(nodeid.ID) string { return "" })
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != ErrStopped {
			t.Errorf("walk on a stopped plane: %v, want ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a walk on a stopped plane hangs")
	}
}

// treePlane is a plane of node self with trees on routes over links
// (replicate_max 0), its data plane a fake; not running yet.
func treePlane(t *testing.T, self nodeid.ID, links ...nodeid.ID) (*Plane, *fakeData) {
	t.Helper()
	router, err := igmp.New(igmp.Config{Version: 3, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second, LastMemberQueryInterval: time.Second, Robustness: 2, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DisableIPv6: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var rt atomic.Pointer[topology.Routes]
	rt.Store(topology.NewRoutes(self, links, nil))
	d := &fakeData{handlers: map[byte]dataplane.ControlHandler{}, sent: map[nodeid.ID]int{}}
	return New(Config{Self: self, Router: router, Data: d, Routes: rt.Load}), d
}

// runPlane runs mc until the returned function is called.
func runPlane(mc *Plane) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mc.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}
