package mcast

// The whole of a group's tree, as its nodes tell it (ipopctl tree): each
// tree node knows only its parent and children, so the walk asks them.
// It starts at this node (or, off the tree, at up to walkStarts of the
// group's subscribers the membership view knows), sends each node a
// TreeQuery and each new node its TreeInfo names another, and ends when
// every node asked has answered or after walkTimeout. Each answer speaks
// only for its sender's own place (a node can claim children it has
// not: they are asked, and tell their own parent); the walk asks at most
// maxWalk nodes, at most maxWalks run at once, and answers to others'
// queries are rate-limited (tree_queries_limited).

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

const (
	walkTimeout = 2 * time.Second
	maxWalk     = 256
	maxWalks    = 4
	walkStarts  = 3
	// Answers to TreeQuery: per second, and burst.
	queryRate  = 50
	queryBurst = 100
)

// ErrBusy: as many walks as maxWalks are under way.
var ErrBusy = errors.New("mcast: too many tree walks under way")

// ErrStopped: the plane stopped (ipopd is shutting down).
var ErrStopped = errors.New("mcast: the multicast plane has stopped")

type walk struct {
	group    netip.Addr
	asked    []nodeid.ID // in the order asked
	answers  map[nodeid.ID]topology.TreeMsg
	done     chan struct{}
	finished bool
}

// ask sends id a TreeQuery, once, within maxWalk.
func (mc *Plane) ask(w *walk, id nodeid.ID) {
	if id.IsZero() || slices.Contains(w.asked, id) || len(w.asked) >= maxWalk {
		return
	}
	w.asked = append(w.asked, id)
	if id == mc.cfg.Self {
		w.answers[id] = mc.trees.t.Info(w.group)
		mc.follow(w, w.answers[id])
		return
	}
	mc.sendTree([]topology.TreeSend{{To: id, Msg: topology.TreeMsg{Kind: topology.TreeQuery, Group: w.group}}})
}

// follow asks the nodes an answer names.
func (mc *Plane) follow(w *walk, m topology.TreeMsg) {
	mc.ask(w, m.Parent)
	for _, c := range m.Children {
		mc.ask(w, c)
	}
}

// finish ends w (loop only).
func (mc *Plane) finish(w *walk) {
	if w.finished {
		return
	}
	w.finished = true
	mc.walks = slices.DeleteFunc(mc.walks, func(x *walk) bool { return x == w })
	close(w.done)
}

// onTreeInfo takes node from's answer to a walk's query (loop only).
func (mc *Plane) onTreeInfo(from nodeid.ID, m *topology.TreeMsg) {
	for _, w := range slices.Clone(mc.walks) {
		if w.group != m.Group || !slices.Contains(w.asked, from) {
			continue
		}
		if _, ok := w.answers[from]; ok {
			continue
		}
		w.answers[from] = *m
		mc.follow(w, *m)
		if len(w.answers) == len(w.asked) {
			mc.finish(w)
		}
	}
}

// onTreeQuery answers node from's question about g (loop only).
func (mc *Plane) onTreeQuery(from nodeid.ID, g netip.Addr) {
	if !mc.trees.answering.Allow() {
		mc.trees.queriesLimited.Add(1)
		return
	}
	mc.sendTree([]topology.TreeSend{{To: from, Msg: mc.trees.t.Info(g)}})
}

// TreeWalk asks the nodes of g's tree for their places in it and returns
// what they said (within walkTimeout); name gives nodes' names.
func (mc *Plane) TreeWalk(g netip.Addr, name func(nodeid.ID) string) (*control.TreeWalk, error) {
	w := &walk{group: g, answers: map[nodeid.ID]topology.TreeMsg{}, done: make(chan struct{})}
	var err error
	ran := mc.loop.Call(func() {
		if len(mc.walks) >= maxWalks {
			err = ErrBusy
			return
		}
		mc.walks = append(mc.walks, w)
		if mc.trees.t.Info(g).Root || !mc.trees.t.Info(g).Parent.IsZero() {
			mc.ask(w, mc.cfg.Self)
		} else {
			for _, s := range mc.state.Load().view.Nodes(g) {
				if len(w.asked) < walkStarts {
					mc.ask(w, s.Node)
				}
			}
		}
		if len(w.answers) == len(w.asked) {
			mc.finish(w)
			return
		}
		time.AfterFunc(walkTimeout, func() { mc.loop.Post(func() { mc.finish(w) }) })
	})
	switch {
	case !ran:
		return nil, ErrStopped
	case err != nil:
		return nil, err
	}
	select {
	case <-w.done:
	case <-mc.loop.Done():
		return nil, ErrStopped
	}
	var out *control.TreeWalk
	if !mc.loop.Call(func() { out = walkStatus(w, mc.cfg.Self, name) }) {
		return nil, ErrStopped
	}
	return out, nil
}

func walkStatus(w *walk, self nodeid.ID, name func(nodeid.ID) string) *control.TreeWalk {
	node := func(id nodeid.ID) control.TreeNode { return control.TreeNode{Name: name(id), NodeID: id.String()} }
	out := &control.TreeWalk{Group: w.group.String(), Nodes: []control.TreeWalkNode{}, Unanswered: []control.TreeNode{}}
	for _, id := range w.asked {
		m, ok := w.answers[id]
		if !ok {
			out.Unanswered = append(out.Unanswered, node(id))
			continue
		}
		n := control.TreeWalkNode{TreeNode: node(id), Here: id == self, Root: m.Root, Depth: m.Depth, Children: []control.TreeNode{}}
		n.On = m.Root || !m.Parent.IsZero()
		if !m.Parent.IsZero() {
			p := node(m.Parent)
			n.Parent = &p
		}
		for _, c := range m.Children {
			n.Children = append(n.Children, node(c))
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out
}
