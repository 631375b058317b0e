package node

// The node's multicast plane.
//
//	TAP reader ──IGMP/MLD frames (copies)──► loop: igmp.Router (querier) ──► query frames ──► TAP
//	                                                 │ events: group → local filter
//	                                                 ▼
//	                                          topology.Advertiser ──delta──► every node (ring broadcast)
//	nodes ──control messages──► loop: topology.Table ──► View (who wants what)
//	                                                 │
//	data path (TAP reader, socket reader) ◄── state: View + local filters (immutable, atomic)
//
// All membership state changes on one loop; the data path reads only the
// immutable state, replaced whole on every change.

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// Membership refresh: a full state to every node this often; nodes expire
// ours after three missed refreshes (topology's rule). A lost link removes
// the peer's memberships at once and asks it for a full state (routed): a
// peer that is still there answers at once. A node that joins broadcasts
// its state and asks every node for theirs (joinDelay after its first link,
// so that its ring links are up).
const (
	refreshInterval = 30 * time.Second
	expireCheck     = 5 * time.Second
	joinDelay       = 2 * time.Second
)

// Control message kinds (first byte of a link control payload).
const ctlMembership = 1

type mcast struct {
	n     *Node
	tasks chan func()
	done  chan struct{} // closed when the loop has stopped
	// frames carries IGMP/MLD frames from the TAP reader; a full queue
	// drops (the querier asks again).
	frames chan []byte
	drops  atomic.Uint64

	// Loop-only.
	router *igmp.Router
	adv    *topology.Advertiser
	table  *topology.Table
	joined bool // the join broadcast is done or scheduled

	state atomic.Pointer[mcastState]
	// scratch for Route: TAP reader goroutine only.
	scratch []nodeid.ID
}

// mcastState is what the data path reads.
type mcastState struct {
	view  *topology.View
	local map[netip.Addr]filter.Filter // groups with local members
	stats *groupStats
}

func newMcast(n *Node, r *igmp.Router, epoch uint64) *mcast {
	mc := &mcast{n: n, tasks: make(chan func(), 1024), done: make(chan struct{}), frames: make(chan []byte, 256),
		router: r, adv: topology.NewAdvertiser(epoch), table: topology.NewTable()}
	mc.adv.SetRefresh(refreshInterval) // what peers are told is what we do
	mc.state.Store(&mcastState{view: mc.table.View(), local: map[netip.Addr]filter.Filter{}, stats: newGroupStats()})
	return mc
}

// post queues f for the loop; once the loop has stopped, f is dropped (a
// late control message from a closing link must not block its reader).
func (mc *mcast) post(f func()) {
	select {
	case mc.tasks <- f:
	case <-mc.done:
	}
}

// call runs f on the loop and waits for it, at most 2 s (the loop may be
// stopping): it reports whether f ran.
func (mc *mcast) call(f func()) bool {
	done := make(chan struct{})
	select {
	case mc.tasks <- func() { f(); close(done) }:
	case <-mc.done:
		return false
	case <-time.After(2 * time.Second):
		return false
	}
	select {
	case <-done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// input hands an IGMP/MLD frame from the TAP reader to the loop.
func (mc *mcast) input(frame []byte) {
	select {
	case mc.frames <- append([]byte(nil), frame...):
	default:
		mc.drops.Add(1)
	}
}

func (mc *mcast) run(ctx context.Context) {
	defer close(mc.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	refresh := time.NewTicker(refreshInterval)
	defer refresh.Stop()
	expire := time.NewTicker(expireCheck)
	defer expire.Stop()
	adverts := time.NewTicker(advertEvery)
	defer adverts.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-mc.frames:
			if err := mc.router.Input(time.Now(), f); err != nil {
				mc.n.log.Debug("igmp/mld frame refused", "err", err)
			}
		case f := <-mc.tasks:
			f()
		case now := <-timer.C:
			mc.router.Advance(now)
		case <-refresh.C:
			mc.sendAll(mc.adv.Full())
			mc.sendAdvert(nodeid.ID{}, mc.n.arp.FullAdvert())
		case <-adverts.C:
			if a := mc.n.arp.TakeAdvert(); a != nil {
				mc.sendAdvert(nodeid.ID{}, a)
			}
		case now := <-expire.C:
			mc.n.arp.Expire(now)
			if mc.table.Expire(now) {
				mc.publish()
			}
		}
		mc.afterRouter()
		if next := mc.router.Next(); !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// afterRouter writes the router's queries and turns its events into
// advertisements.
func (mc *mcast) afterRouter() {
	if out := mc.router.TakeOutput(); len(out) > 0 {
		if _, err := mc.n.tapw.Write(out); err != nil {
			mc.n.log.Debug("writing queries", "err", err)
		}
	}
	evs := mc.router.TakeEvents()
	for _, ev := range evs {
		mc.n.log.Info("local membership", "group", ev.Group.String(), "filter", ev.Filter.String())
		if linkScope(ev.Group) {
			continue // flooded anyway: no need to advertise
		}
		if delta, changed := mc.adv.Set(ev.Group, ev.Filter); changed {
			mc.sendAll(delta)
		}
	}
	if len(evs) > 0 {
		mc.publish()
	}
}

// sendAll broadcasts m to every node.
func (mc *mcast) sendAll(m *topology.Message) { mc.send(nodeid.ID{}, m) }

// send sends m to one node, or to every node (zero ID).
func (mc *mcast) send(to nodeid.ID, m *topology.Message) {
	b, err := m.MarshalBinary()
	if err != nil {
		mc.n.log.Error("membership message", "err", err)
		return
	}
	mc.control(to, append([]byte{ctlMembership}, b...), "membership")
}

// control sends a control payload to one node, or to every node (zero ID).
func (mc *mcast) control(to nodeid.ID, payload []byte, what string) {
	if to == (nodeid.ID{}) {
		mc.n.links.mgr.BroadcastControl(payload)
		return
	}
	if err := mc.n.links.mgr.SendControl(to, payload); err != nil {
		mc.n.log.Debug(what+" not sent", "to", to.Short(), "err", err)
	}
}

// onControl takes a control message from a node (any goroutine).
func (mc *mcast) onControl(from nodeid.ID, payload []byte) {
	if len(payload) < 1 {
		return
	}
	if payload[0] == ctlNeighbours {
		mc.post(func() { mc.applyAdvert(from, payload[1:]) })
		return
	}
	if payload[0] != ctlMembership {
		return
	}
	var m topology.Message
	if err := m.UnmarshalBinary(payload[1:]); err != nil {
		mc.n.log.Debug("bad membership message", "from", from.Short(), "err", err)
		return
	}
	mc.post(func() {
		if m.Kind == topology.KindSync {
			mc.send(from, mc.adv.Full())
			mc.sendAdvert(from, mc.n.arp.FullAdvert())
			return
		}
		changed, needSync := mc.table.Apply(from, &m, time.Now())
		if needSync {
			mc.send(from, &topology.Message{Kind: topology.KindSync})
		}
		if changed {
			mc.publish()
		}
	})
}

// onLink: a new link gets our full state, and the first one schedules
// the join broadcast; a lost one takes the peer's memberships and hosts
// with it, and asks the peer (routed) for its state in case it is still
// there. A link closed on purpose changes nothing: the peer is reachable
// through the ring.
func (mc *mcast) onLink(peer nodeid.ID, ev overlay.LinkEvent) {
	mc.post(func() {
		switch ev {
		case overlay.LinkUp:
			mc.send(peer, mc.adv.Full())
			mc.sendAdvert(peer, mc.n.arp.FullAdvert())
			if !mc.joined {
				mc.joined = true
				time.AfterFunc(joinDelay, func() { mc.post(mc.join) })
			}
		case overlay.LinkLost:
			mc.n.arp.RemoveNode(peer)
			if mc.table.Remove(peer) {
				mc.publish()
			}
			mc.send(peer, &topology.Message{Kind: topology.KindSync})
		}
	})
}

// join tells every node our state and asks for theirs.
func (mc *mcast) join() {
	mc.sendAll(mc.adv.Full())
	mc.sendAll(&topology.Message{Kind: topology.KindSync})
	mc.sendAdvert(nodeid.ID{}, mc.n.arp.FullAdvert())
}

func (mc *mcast) publish() {
	old := mc.state.Load()
	local := map[netip.Addr]filter.Filter{}
	for g := range mc.adv.Groups() {
		local[g] = mc.router.Filter(g)
	}
	mc.state.Store(&mcastState{view: mc.table.View(), local: local, stats: old.stats})
}

var _ overlay.Multicast = (*mcast)(nil)
