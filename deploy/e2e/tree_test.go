package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/overlay/control"
)

// TestTreeMulticast: eight nodes with trees forced (replicate_max 0,
// fanout 2); a group with six subscriber nodes (four any-source, one
// source-specific to the sender, one source-specific to another source)
// and a source that is not a member. The group goes down its tree: no
// node sends more than two copies of a datagram, every subscriber that
// admits the sender gets every datagram exactly once, the one that
// admits another source only and the node not subscribed get none. The node not subscribed then
// joins 2,000 groups, each with a tree of its own, and gets a datagram
// to each of them once. Then a tree node with children
// is SIGKILLed mid-stream: its subtree rejoins, and the others lose under
// 2 s of the stream; then the root (unless the source is the root): a
// new root takes over, and again the others lose under 2 s.
func TestTreeMulticast(t *testing.T) {
	const group, port = "239.5.5.5", 5005
	o := newOverlay(t)
	var ns []*lab.Node
	byName := map[string]*lab.Node{}
	for i := range 8 {
		name := fmt.Sprintf("t%d", i)
		n, err := o.l.Start(o.public(t, name), lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1),
			Rendezvous: o.rv, Config: map[string]any{"ice": map[string]any{"port": 4000},
				"multicast": map[string]any{"replicate_max": 0, "fanout": 2}}})
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
		byName[name] = n
	}
	waitRingOf(t, ns, 2, 60*time.Second)
	src, other := ns[0], ns[7]
	rs := map[string]*lab.Receiver{}
	var subs []string
	for _, n := range ns[1:6] {
		source := ""
		if n == ns[5] {
			source = src.Addr4() // source-specific, to the sender: gets it all too
		}
		rs[n.Name] = join(t, n, group, port, source)
		subs = append(subs, n.Name)
	}
	ssm := join(t, ns[6], group, port, "10.254.0.99") // a source that does not send
	subs = append(subs, ns[6].Name)
	waitSubscribers(t, src, group, subs...)
	// The tree: every subscriber on it, the source sending down it.
	var roles map[string]*control.TreeStatus
	eventually(t, 20*time.Second, "the group's tree built", func() error {
		roles = map[string]*control.TreeStatus{}
		var missing []string
		for _, n := range ns {
			g := groupOn(t, n, group)
			roles[n.Name] = g.Tree
			if n != src && n != other && g.Tree == nil {
				missing = append(missing, n.Name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not on the tree: %v", missing)
		}
		if m := groupOn(t, src, group).Mode; m != "tree" {
			return fmt.Errorf("the source sends it as %q", m)
		}
		return nil
	})
	shape := treeShape(ns, roles)
	t.Logf("tree of %s (* an adopted edge): %s", group, shape)
	// ipopctl tree walks the whole tree: from the source (off the tree:
	// the walk starts at subscribers it knows) and from a subscriber,
	// each node's answer is what that node shows of itself.
	for _, from := range []*lab.Node{src, ns[3]} {
		eventually(t, 10*time.Second, "ipopctl tree on "+from.Name+" agrees with each node", func() error {
			out, err := from.Ctl("tree", group, "--json")
			if err != nil {
				return err
			}
			var js struct{ Walk *control.TreeWalk }
			if err := json.Unmarshal([]byte(out), &js); err != nil || js.Walk == nil {
				return fmt.Errorf("ipopctl tree --json: %v\n%s", err, out)
			}
			got := map[string]control.TreeWalkNode{}
			for _, w := range js.Walk.Nodes {
				got[w.Name] = w
			}
			for _, n := range ns {
				r := groupOn(t, n, group).Tree
				w, ok := got[n.Name]
				if r == nil {
					if ok && w.On {
						return fmt.Errorf("the walk has %s on the tree, it says it is not", n.Name)
					}
					continue
				}
				if !ok {
					return fmt.Errorf("the walk has no %s (unanswered %v)", n.Name, js.Walk.Unanswered)
				}
				var wp, rp string
				if w.Parent != nil {
					wp = w.Parent.Name
				}
				if r.Parent != nil {
					rp = r.Parent.Name
				}
				var wc, rc []string
				for _, c := range w.Children {
					wc = append(wc, c.Name)
				}
				for _, c := range r.Children {
					rc = append(rc, c.Name)
				}
				if wp != rp || w.Root != r.Root || !slices.Equal(wc, rc) {
					return fmt.Errorf("%s: the walk says parent %q root %v children %v, the node %q %v %v", n.Name, wp, w.Root, wc, rp, r.Root, rc)
				}
			}
			return nil
		})
	}
	fwdBefore := map[string]uint64{}
	for _, n := range ns {
		fwdBefore[n.Name] = groupOn(t, n, group).FwdFrames
	}
	const count = 300
	send(t, src, group, port, count, 10*time.Millisecond)
	eventually(t, 5*time.Second, "every any-source subscriber has every datagram", func() error {
		var short []string
		for name, r := range rs {
			if r.Got() < count {
				short = append(short, fmt.Sprintf("%s %d", name, r.Got()))
			}
		}
		if len(short) > 0 {
			return fmt.Errorf("got %v of %d", short, count)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	for name, r := range rs {
		if r.Got() != count || r.Duplicates() != 0 {
			t.Errorf("%s got %d datagrams (%d twice), want each of %d once", name, r.Got(), r.Duplicates(), count)
		}
	}
	if ssm.Got() != 0 {
		t.Errorf("the source-specific subscriber (another source) got %d datagrams", ssm.Got())
	}
	if g := groupOn(t, other, group); g.DlvFrames != 0 {
		t.Errorf("%s, not subscribed, delivered %d frames of the group to its TAP", other.Name, g.DlvFrames)
	}
	var copies []string
	for _, n := range ns {
		d := groupOn(t, n, group).FwdFrames - fwdBefore[n.Name]
		copies = append(copies, fmt.Sprintf("%s %.2f", n.Name, float64(d)/count))
		if d > 2*count {
			t.Errorf("%s sent %d copies of %d datagrams: more than fanout 2 each", n.Name, d, count)
		}
	}
	t.Logf("copies sent per datagram: %s", strings.Join(copies, ", "))

	// The node not subscribed joins 2,000 groups: a tree each, rooted
	// all over the ring; a datagram to each from the source reaches it
	// once.
	const many, mport = 2000, 5020
	var groups []netip.Addr
	for i := range many {
		groups = append(groups, netip.AddrFrom4([4]byte{239, 21, byte(i >> 8), byte(i)}))
	}
	rx, err := lab.JoinGroups(other.Host, "ipop0", groups, mport)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	eventually(t, 60*time.Second, other.Name+" on the tree of each of its 2,000 groups, the source sending down them", func() error {
		gs := groupsJSON(t, other)
		on := 0
		for _, g := range gs.Groups {
			if g.Tree != nil && strings.HasPrefix(g.Group, "239.21.") {
				on++
			}
		}
		sg := groupsJSON(t, src)
		tree := 0
		for _, g := range sg.Groups {
			if g.Mode == "tree" && strings.HasPrefix(g.Group, "239.21.") {
				tree++
			}
		}
		if on != many || tree != many {
			return fmt.Errorf("%s on %d trees, the source sends %d as trees", other.Name, on, tree)
		}
		return nil
	})
	if err := lab.SendGroups(src.Host, "ipop0", groups, mport, src.Name, 500*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if missing, dups := rx.Missing(groups, src.Name); len(missing) > 0 || dups > 0 {
		var counts []string
		for _, n := range ns {
			p, err := n.Peers()
			if err != nil {
				continue
			}
			counts = append(counts, fmt.Sprintf("%s: tree sent %d forwarded %d, stray %d, no_tree %d, unknown_origin %d, bad_origin %d, no_route %d, tree_queue_full %d",
				n.Name, p.Routed["tree_sent"], p.Routed["tree_forwarded"], p.Drops["tree_stray"], p.Drops["tree_no_tree"], p.Drops["unknown_origin"],
				p.Drops["bad_origin"], p.Drops["no_route"], p.Drops["tree_queue_full"]))
		}
		t.Errorf("2,000 groups down their trees: %d got nothing (first %v), %d twice\n%s", len(missing), missing[:min(len(missing), 5)], dups, strings.Join(counts, "\n"))
	}
	roots := map[string]int{}
	for _, n := range ns {
		for _, g := range groupsJSON(t, n).Groups {
			if g.Tree != nil && g.Tree.Root && strings.HasPrefix(g.Group, "239.21.") {
				roots[n.Name]++
			}
		}
	}
	t.Logf("2,000 groups' roots: %v", roots)

	// A tree node with children dies mid-stream: one with a child among
	// the subscribers watched below, not the root (the root dies next).
	// Each node has a link up to its parent by then, adopted ones too
	// (their death is then seen by link liveness, not ~6 s later).
	eventually(t, 10*time.Second, "a link to each tree parent", func() error {
		roles = map[string]*control.TreeStatus{}
		var missing []string
		for _, n := range ns {
			r := groupOn(t, n, group).Tree
			roles[n.Name] = r
			if r == nil || r.Parent == nil {
				continue
			}
			p, err := n.Peers()
			if err != nil {
				return err
			}
			up := false
			for _, l := range p.Links {
				up = up || l.Name == r.Parent.Name && l.State == "up"
			}
			if !up {
				missing = append(missing, n.Name+" → "+r.Parent.Name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no link up from child to parent: %v", missing)
		}
		return nil
	})
	shape = treeShape(ns, roles)
	t.Logf("tree of %s now: %s", group, shape)
	var victim *lab.Node
	for _, n := range ns[1:6] {
		if r := roles[n.Name]; r != nil && !r.Root && victim == nil {
			for _, c := range r.Children {
				if _, watched := rs[c.Name]; watched {
					victim = n
				}
			}
		}
	}
	if victim == nil {
		t.Skipf("no subscriber but the root with a subscriber below it in this tree (%s): the kill is not measured", shape)
	}
	alive := slices.DeleteFunc(slices.Clone(ns[1:6]), func(n *lab.Node) bool { return n == victim })
	killTreeNode(t, src, victim, alive, byName, group, port+1)

	// Then the root dies (unless it is the source): the node next
	// nearest the key becomes the root, the others join it.
	var root *lab.Node
	eventually(t, 10*time.Second, "a root of the tree", func() error {
		for _, n := range ns {
			if n == victim {
				continue
			}
			if g := groupOn(t, n, group); g.Tree != nil && g.Tree.Root {
				root = n
				return nil
			}
		}
		return fmt.Errorf("no node is the root")
	})
	if root == src {
		t.Logf("the root is the source: its death is not measured")
		return
	}
	alive = slices.DeleteFunc(alive, func(n *lab.Node) bool { return n == root })
	killTreeNode(t, src, root, alive, byName, group, port+2)
}

// killTreeNode SIGKILLs victim while src streams to group (on port,
// every 20 ms) and checks that each of the subscribers watched lost
// under 2 s of the stream in the 5 s after, and none got a datagram
// twice.
func killTreeNode(t *testing.T, src, victim *lab.Node, watched []*lab.Node, byName map[string]*lab.Node, group string, port int) {
	t.Helper()
	stream, err := lab.StartStream(src.Host, "ipop0", group, port, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Stop()
	srs := map[string]*lab.Receiver{}
	for _, n := range watched {
		srs[n.Name] = join(t, n, group, port, "")
	}
	time.Sleep(3 * time.Second)
	killed := time.Now()
	victim.Proc.Kill()
	time.Sleep(6 * time.Second)
	for name, r := range srs {
		lost := 0
		for seq, at := range stream.Sent() {
			if !at.Before(killed) && at.Before(killed.Add(5*time.Second)) {
				if _, ok := r.Arrived(seq); !ok {
					lost++
				}
			}
		}
		d := time.Duration(lost) * 20 * time.Millisecond
		t.Logf("%s SIGKILLed: %s lost %d datagrams (%s of the stream)", victim.Name, name, lost, d)
		if d >= 2*time.Second {
			out, _ := byName[name].Ctl("tree", group)
			t.Errorf("%s lost %s of the stream when tree node %s died, want under 2s; its tree now:\n%s", name, d, victim.Name, out)
		}
		if r.Duplicates() != 0 {
			t.Errorf("%s got %d datagrams twice", name, r.Duplicates())
		}
	}
}

// treeShape is a tree's edges as the nodes on it say: "t1 under t2* →
// [t5]", * marking an adopted edge.
func treeShape(ns []*lab.Node, roles map[string]*control.TreeStatus) string {
	var shape []string
	for _, n := range ns {
		r := roles[n.Name]
		if r == nil {
			continue
		}
		var kids []string
		for _, c := range r.Children {
			kids = append(kids, c.Name)
		}
		parent := "root"
		if r.Parent != nil {
			parent = "under " + r.Parent.Name
			if r.Adopted {
				parent += "*"
			}
		}
		shape = append(shape, fmt.Sprintf("%s %s → [%s]", n.Name, parent, strings.Join(kids, " ")))
	}
	return strings.Join(shape, "; ")
}
