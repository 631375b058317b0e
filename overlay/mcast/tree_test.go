package mcast

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// TestTreeModes: a group with at most replicate_max subscriber nodes is
// replicated by its source; one more, and after treeSwitch the source
// sends it toward the tree's root (it is not on the tree); a join from a
// node makes this node a tree node that forwards the node's frames to its
// other tree neighbours; a frame along the tree from a node that is not a
// neighbour is a stray, answered with a prune; the group back under the
// threshold is replicated again at once.
func TestTreeModes(t *testing.T) {
	router, err := igmp.New(igmp.Config{Version: 3, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second, LastMemberQueryInterval: time.Second, Robustness: 2, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DisableIPv6: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	self := nodeid.ID{0x80}
	peers := []nodeid.ID{{0x10}, {0x20}, {0x30}}
	var rt atomic.Pointer[topology.Routes]
	rt.Store(topology.NewRoutes(self, peers, nil))
	d := &fakeData{handlers: map[byte]dataplane.ControlHandler{}, sent: map[nodeid.ID]int{}}
	mc := New(Config{Self: self, Router: router, Data: d, Routes: rt.Load, Fanout: 4, ReplicateMax: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	g := netip.MustParseAddr("239.4.4.4")
	src := netip.MustParseAddr("10.254.0.9")
	subscribe := func(id nodeid.ID, seq uint64, on bool) {
		m := &topology.Message{Kind: topology.KindFull, Epoch: 1, Seq: seq, Refresh: time.Minute}
		if on {
			m.Groups = []topology.Group{{Addr: g, Filter: filter.Filter{Mode: filter.Exclude}}}
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.handlers[dataplane.KindMembership](id, append([]byte{dataplane.KindMembership}, b...), true); err != nil {
			t.Fatal(err)
		}
		mc.loop.Call(func() {})
	}
	frame := udpFrame(src, g)
	route := func() ([]nodeid.ID, dataplane.Action) {
		pf := tap.Parse(frame)
		return mc.Route(&pf, frame, nil)
	}
	subscribe(peers[0], 1, true)
	subscribe(peers[1], 1, true)
	if dst, a := route(); a != dataplane.To || len(dst) != 2 {
		t.Fatalf("2 subscribers, replicate_max 2: %v %v, want To both", a, dst)
	}
	subscribe(peers[2], 1, true)
	if _, a := route(); a != dataplane.To {
		t.Fatalf("3 subscribers, at once: %v, want To until the switch", a)
	}
	time.Sleep(treeSwitch + treeTickBy + 2*treeCheck)
	dst, a := route()
	if a != dataplane.ToRoot || len(dst) != 4 || dst[0] != topology.GroupKey(g) {
		t.Fatalf("3 subscribers after the switch: %v %v, want ToRoot with the key and the 3 subscribers", a, dst)
	}
	// peers[2] joins through us: we are on the tree now.
	join, _ := (&topology.TreeMsg{Kind: topology.TreeJoin, Group: g, Filter: filter.Filter{Mode: filter.Exclude}}).MarshalBinary()
	if err := d.handlers[dataplane.KindTree](peers[2], append([]byte{dataplane.KindTree}, join...), true); err != nil {
		t.Fatal(err)
	}
	mc.loop.Call(func() {}) // the message taken
	mc.loop.Call(func() {}) // the trees published after it
	pf := tap.Parse(frame)
	out, v := mc.TreeForward(&pf, frame, peers[2], true, nil)
	if !v.On || v.Local || v.Key != topology.GroupKey(g) {
		t.Fatalf("after a join: verdict %+v", v)
	}
	for _, id := range out {
		if id == peers[2] {
			t.Fatalf("a frame from the child goes back to it: %v", out)
		}
	}
	if dst, a := route(); a != dataplane.Tree || len(dst) != len(out)+1 {
		t.Errorf("from the TAP on the tree: %v %v, want Tree to the child too", a, dst)
	}
	stranger := nodeid.ID{0x55}
	if _, v := mc.TreeForward(&pf, frame, stranger, true, nil); v.On {
		t.Errorf("from a stranger along the tree: %+v, want a stray", v)
	}
	time.Sleep(2 * treeCheck)
	d.mu.Lock()
	pruned := d.sent[stranger]
	d.mu.Unlock()
	if pruned != 1 {
		t.Errorf("tree messages to the stranger: %d, want one prune", pruned)
	}
	if err := d.handlers[dataplane.KindTree](peers[2], []byte{dataplane.KindTree, 1, 2, 3}, true); err == nil || mc.trees.badMsgs.Load() != 1 {
		t.Errorf("a malformed tree message: %v, bad %d", err, mc.trees.badMsgs.Load())
	}
	subscribe(peers[2], 2, false)
	if _, a := route(); a != dataplane.To {
		t.Errorf("back to 2 subscribers: %v, want To at once", a)
	}
}
