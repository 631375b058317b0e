package overlay

// The ring on the manager's loop (topology.Ring decides, this file acts):
//
//	link up/closed/lost (publish) ─► Ring.LinkUp / LinkDown / LinkFailed
//	presence list (OnPeers, renewed)  ─► Ring.Learn / Forget
//	Neighbors from a linked peer      ─► Ring.Apply
//	bytes toward nodes (data path)    ─► OnDemand.Tick, once a second ─► Ring.SetOnDemand
//	after every task and tick: step ─► Ring.Tick ─► connect / close / announce
//	                                 ─► Ring.Routes ─► dataplane.View (publish)

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// step does what the ring asks, and publishes its routes when they change.
// At rest it costs a few comparisons.
func (m *Manager) step(now time.Time) {
	acts := m.ring.Tick(now)
	for _, id := range acts.Close {
		m.closeLink(id, now)
	}
	for _, id := range acts.Connect {
		m.want(id, now)
	}
	if acts.Announce {
		m.announce(now)
	}
	if m.ring.Routes(now) != m.view.Routes() {
		m.publish()
	}
}

// want starts a link to id the ring asks for, unless one is under way or
// its retry is not due. The lower ID offers; the higher knocks.
func (m *Manager) want(id nodeid.ID, now time.Time) {
	l := m.links[id]
	if l != nil && l.state != stateDown {
		return
	}
	if m.activeLinks() >= m.cfg.MaxLinks {
		return
	}
	if !m.cfg.Signal.Connected() && !m.routable(id) {
		return // no way to signal yet
	}
	r := m.retryFor(id)
	if now.Before(r.next) {
		return
	}
	if !m.self.Less(id) && r.knocks >= maxKnocks {
		// Nobody answers: the node is gone, or no path reaches it. Hold
		// it down so that the ring picks others meanwhile.
		r.knocks = 0
		m.ring.LinkFailed(id, now)
		m.log.Debug("knocks unanswered", "node", m.nameOf(id))
		return
	}
	m.backoff(r, now)
	if m.self.Less(id) {
		m.offer(id)
	} else {
		r.knocks++
		m.sendTo(id, &linkMsg{Kind: kindKnock, Boot: m.boot})
	}
}

// closeLink closes a link neither end wants, telling the peer so.
func (m *Manager) closeLink(id nodeid.ID, now time.Time) {
	l := m.links[id]
	if l == nil || l.state == stateDown {
		m.ring.LinkDown(id, now)
		return
	}
	m.sendTo(id, &linkMsg{Kind: kindBye, Session: l.session, Why: byeUnneeded})
	l.closed = true
	m.down(l, "closed: neither end needs it")
	delete(m.links, id) // gone from `ipopctl peers` too
}

// announce sends this node's links to every linked peer.
func (m *Manager) announce(now time.Time) {
	payload := m.neighbors(now)
	for _, p := range m.view.Up() {
		if err := m.cfg.Data.SendControl(p.ID, payload); err != nil {
			m.log.Debug("neighbors not sent", "to", m.nameOf(p.ID), "err", err)
		}
	}
}

// announceTo sends this node's links to one peer.
// It does not count as an announcement: the others hear of a change at
// the next Tick (answering a new peer in between once kept a new link
// from every other peer until the next refresh, a minute).
func (m *Manager) announceTo(id nodeid.ID, now time.Time) {
	if err := m.cfg.Data.SendControl(id, encodeNeighbors(m.log, m.ring.NeighborsFor(now))); err != nil {
		m.log.Debug("neighbors not sent", "to", id.Short(), "err", err)
	}
}

func (m *Manager) neighbors(now time.Time) []byte {
	return encodeNeighbors(m.log, m.ring.Neighbors(now))
}

func encodeNeighbors(log *slog.Logger, nb *topology.Neighbors) []byte {
	b, err := nb.AppendBinary([]byte{dataplane.KindRing})
	if err != nil {
		log.Error("neighbors message", "err", err) // a bug: the ring builds valid ones
	}
	return b
}

// onRingMessage takes a peer's Neighbors (control kind 16) on a reader
// goroutine. Only a node's own word on its links counts, so it must come
// over the direct link.
func (m *Manager) onRingMessage(from nodeid.ID, payload []byte, direct bool) error {
	if !direct {
		return ErrRoutedNeighbors
	}
	var nb topology.Neighbors
	if err := nb.UnmarshalBinary(payload[1:]); err != nil {
		return fmt.Errorf("neighbors message: %w", err)
	}
	m.post(func() { m.onNeighbors(from, &nb) })
	return nil
}

// onNeighbors applies a peer's links. The first message on a link is
// answered with ours: whichever end finished the handshake first may have
// announced before the other could read it.
func (m *Manager) onNeighbors(from nodeid.ID, nb *topology.Neighbors) {
	l := m.links[from]
	if l == nil || l.state != stateUp {
		m.neighborsUnlinked.Add(1) // came on a link that is going or gone
		return
	}
	now := time.Now()
	if !l.heardRing {
		l.heardRing = true
		m.announceTo(from, now)
	}
	m.ring.Apply(from, nb)
}

// tickOnDemand turns the bytes counted toward each node into on-demand
// links wanted or released.
func (m *Manager) tickOnDemand(now time.Time) {
	succ, chords := m.ring.Desired(now)
	add, remove := m.od.Tick(now, append(succ, chords...))
	for _, id := range add {
		m.odSince[id] = now
		m.log.Info("on-demand link wanted", "node", m.nameOf(id), "rate_bits", m.od.Rate(id))
	}
	for _, id := range remove {
		delete(m.odSince, id)
		m.log.Info("on-demand link released", "node", m.nameOf(id), "rate_bits", m.od.Rate(id))
	}
	if trees := m.od.TreeLinks(); len(add) > 0 || len(remove) > 0 || !slices.Equal(trees, m.treeLinks) {
		if !slices.Equal(trees, m.treeLinks) {
			m.log.Debug("links for trees wanted", "nodes", len(trees))
			m.treeLinks = trees
		}
		m.ring.SetOnDemand(append(m.od.Links(), trees...))
	}
}

func (m *Manager) nameOf(id nodeid.ID) string {
	if n := m.names[id]; n != "" {
		return n + "/" + id.Short()
	}
	return id.Short()
}

// role says why the link to id exists (loop only).
func (m *Manager) role(id nodeid.ID, succ, chords, od []nodeid.ID) string {
	t := id
	switch {
	case slices.Contains(succ, t):
		return "successor"
	case slices.Contains(chords, t):
		return "chord"
	case slices.Contains(od, t):
		return "on-demand"
	case slices.Contains(m.treeLinks, t):
		return "tree"
	}
	return "peer"
}

// Ring reports the node's place in the ring, as `ipopctl status` shows it.
func (m *Manager) Ring() *control.RingStatus {
	var out *control.RingStatus
	m.call(func() {
		now := time.Now()
		node := func(id nodeid.ID) control.RingNode {
			return control.RingNode{Name: m.names[id], NodeID: id.String(), Up: m.view.Linked(id)}
		}
		succ, chords := m.ring.Desired(now)
		known := m.ring.Known(now)
		out = &control.RingStatus{Known: len(known), Links: len(m.view.Up())}
		for _, id := range succ {
			out.Successors = append(out.Successors, node(id))
		}
		for _, id := range chords {
			out.Chords = append(out.Chords, node(id))
		}
		for _, id := range m.od.Links() {
			n := node(id)
			n.RateBits, n.Since = m.od.Rate(id), m.odSince[id]
			out.OnDemand = append(out.OnDemand, n)
		}
		if len(known) > 0 {
			p := node(known[len(known)-1])
			out.Predecessor = &p
		}
	})
	return out
}
