// Package mcast is the node's multicast plane: the IGMP/MLD querier on the
// TAP, this node's memberships advertised to the overlay, the other nodes'
// memberships, and the per-frame decisions the data plane asks of it.
//
//	TAP reader ──IGMP/MLD frames (copies)──► loop: igmp.Router (querier) ──► queries ──► TAP
//	                                                │ events: group → local filter
//	                                                ▼
//	                                         topology.Advertiser ──delta──► every node (ring broadcast)
//	nodes ──control kind 1──► loop: topology.Table ──► View (who wants what)
//	                                                │
//	data plane (TAP and socket readers) ◄── state: View + local filters (immutable, atomic)
//
// All membership state changes on one loop (taskloop); the data plane
// reads only the immutable state, replaced whole on every change.
package mcast

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/internal/taskloop"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// Membership refresh: a full state to every node this often; nodes expire
// ours after three missed refreshes (topology's rule). A lost link removes
// the peer's memberships at once and asks it for a full state (routed): a
// peer that is still there answers at once. A node that joins broadcasts
// its state and asks every node for theirs (JoinDelay after its first
// link, so that its ring links are up).
const (
	RefreshInterval = 30 * time.Second
	JoinDelay       = 2 * time.Second
	expireCheck     = 5 * time.Second
	// publishAtMost bounds how stale the published view gets while a
	// burst of membership messages goes on.
	publishAtMost = 100 * time.Millisecond
)

// Config is what a Plane needs; Router and Data are required.
type Config struct {
	Self   nodeid.ID // this node: notices that it is gone are ignored
	Router *igmp.Router
	Data   dataplane.Control
	Log    *slog.Logger
	// OnSync is called on the plane's loop when node from asks for our
	// state (it lost track of us): other planes answer it too.
	OnSync func(from nodeid.ID)
	// OnGone is called on the plane's loop when node id is taken for
	// gone (gone.go): other planes drop what they hold of it too.
	OnGone func(id nodeid.ID)
	// Routes returns the ring's current routes (the data plane's), which
	// trees are built along (tree.go); nil: no trees, every group is
	// replicated.
	Routes func() *topology.Routes
	// Fanout and ReplicateMax are multicast.fanout and
	// multicast.replicate_max (tree.go); Fanout 0 is the default.
	Fanout, ReplicateMax int
	// Lossy, if set, reports whether the link to a node is up but routed
	// around for its loss (dataplane.Plane.Lossy; Trees.SetLossy).
	Lossy func(nodeid.ID) bool
	// WantLinks, if set, is given the links the trees want
	// (Trees.AdoptedParents) whenever they change, on the plane's loop.
	WantLinks func(ids []nodeid.ID)
}

// Plane is the multicast plane of one node.
type Plane struct {
	cfg  Config
	log  *slog.Logger
	loop *taskloop.Loop
	// queriers is who was querier per family when last looked (logging
	// each change).
	queriers map[int]querierSeen
	// frames carries IGMP/MLD frames from the TAP reader; a full queue
	// drops (the querier asks again).
	frames chan []byte
	drops  atomic.Uint64

	// Loop-only.
	router *igmp.Router
	adv    *topology.Advertiser
	table  *topology.Table
	joined bool // the join broadcast is done or scheduled
	// dirty: the membership table changed since the last publish, at
	// published.
	dirty     bool
	published time.Time
	synced    map[nodeid.ID]time.Time // when each node last got our state on request
	lastGen   time.Time               // when synced was last swept
	probes    probes                  // nodes that may be gone (gone.go)
	trees     treeState               // this node's part in the groups' trees (tree.go)
	walks     []*walk                 // tree walks under way (treewalk.go)

	syncsRefused atomic.Uint64 // Sync requests over the rate limit
	tableFull    atomic.Uint64 // messages beyond the table's bounds
	oversize     atomic.Uint64 // states beyond what one node may advertise
	badParts     atomic.Uint64 // states in parts out of order
	fullLog      *limitlog.Logger
	oversizeLog  *limitlog.Logger
	// This node's own groups over topology's bounds (and the querier's).
	localRefused, localWidened, igmpLimit atomic.Uint64
	localLog, igmpLog                     *limitlog.Logger

	state atomic.Pointer[state]
}

// state is what the data plane reads.
type state struct {
	view  *topology.View
	local map[netip.Addr]filter.Filter // groups with local members
	stats *groupStats
	// The trees (tree.go): this node's forwarding state, and the groups
	// whose frames go down a tree rather than to each subscriber.
	trees    *topology.TreeTable
	treeMode map[netip.Addr]bool
}

// New returns the plane and registers its control messages (kind 1) with
// the data plane; Run starts it.
func New(cfg Config) *Plane {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	mc := &Plane{cfg: cfg, log: cfg.Log, loop: taskloop.New(8192), frames: make(chan []byte, 256),
		router: cfg.Router, adv: topology.NewAdvertiser(randomEpoch()), table: topology.NewTable()}
	mc.adv.SetRefresh(RefreshInterval) // what peers are told is what we do
	mc.state.Store(&state{view: mc.table.View(), local: map[netip.Addr]filter.Filter{}, stats: newGroupStats(),
		trees: (&topology.Trees{}).Table(), treeMode: map[netip.Addr]bool{}})
	mc.trees.init(cfg)
	mc.fullLog = limitlog.New(mc.log, slog.LevelWarn, "membership table full: messages from further nodes refused (membership_table_full)", 0)
	mc.oversizeLog = limitlog.New(mc.log, slog.LevelWarn, "membership beyond what one node may advertise: its state dropped (membership_oversize)", 0)
	mc.localLog = limitlog.New(mc.log, slog.LevelWarn, "local membership beyond what the overlay carries of one node: group not advertised, or its sources widened to all", 0)
	mc.igmpLog = limitlog.New(mc.log, slog.LevelWarn, "querier: group table full, membership report records ignored", 0)
	cfg.Data.HandleControl(dataplane.KindMembership, mc.onControl)
	cfg.Data.HandleControl(dataplane.KindGone, mc.onGone)
	cfg.Data.HandleControl(dataplane.KindTree, mc.onTree)
	mc.probes.init(mc.log)
	return mc
}

func randomEpoch() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}

// Membership hands an IGMP/MLD frame from the TAP reader to the loop
// (dataplane.Multicast).
func (mc *Plane) Membership(frame []byte) {
	select {
	case mc.frames <- slices.Clone(frame):
	default:
		mc.drops.Add(1)
	}
}

// Run is the plane's loop; it returns when ctx is done.
func (mc *Plane) Run(ctx context.Context) {
	defer mc.loop.Close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	refresh := time.NewTicker(RefreshInterval)
	defer refresh.Stop()
	expire := time.NewTicker(expireCheck)
	defer expire.Stop()
	treeTick := time.NewTicker(treeCheck)
	defer treeTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-mc.frames:
			if err := mc.router.Input(time.Now(), f); err != nil {
				if errors.Is(err, igmp.ErrLimit) {
					mc.igmpLimit.Add(1)
					mc.igmpLog.Log("err", err)
				} else {
					mc.log.Debug("igmp/mld frame refused", "err", err)
				}
			}
		case f := <-mc.loop.Tasks():
			// Membership messages come in bursts (a node joining
			// thousands of groups sends as many deltas); the view is
			// rebuilt once the burst is through, or every
			// publishAtMost, not once per message. A task that comes
			// last (a Call) sees what came before it.
			if mc.dirty && len(mc.loop.Tasks()) == 0 {
				mc.publish()
			}
			f()
			if mc.dirty && (len(mc.loop.Tasks()) == 0 || time.Since(mc.published) >= publishAtMost) {
				mc.publish()
			}
		case now := <-timer.C:
			mc.router.Advance(now)
		case <-refresh.C:
			mc.readvertise()
			mc.sendFull(nodeid.ID{})
		case now := <-expire.C:
			if mc.table.Expire(now) {
				mc.publish()
			}
		case now := <-treeTick.C:
			mc.treeTick(now)
		}
		mc.afterRouter()
		if next := mc.router.Next(); !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// afterRouter writes the router's queries and turns its events into
// advertisements.
func (mc *Plane) afterRouter() {
	mc.logQuerierChanges()
	if out := mc.router.TakeOutput(); len(out) > 0 {
		if _, err := mc.cfg.Data.WriteTAP(out); err != nil {
			mc.log.Debug("writing queries", "err", err)
		}
	}
	evs := mc.router.TakeEvents()
	for _, ev := range evs {
		mc.log.Info("local membership", "group", ev.Group.String(), "filter", ev.Filter.String())
		if linkScope(ev.Group) {
			continue // flooded anyway: no need to advertise
		}
		mc.advertise(ev.Group, ev.Filter)
	}
	if len(evs) > 0 {
		mc.publish()
	}
}

// advertise records a local filter and sends the change, counting and
// logging a group the bounds refuse or widen.
func (mc *Plane) advertise(g netip.Addr, f filter.Filter) {
	refused, widened := mc.adv.Refused(), mc.adv.Widened()
	if delta, changed := mc.adv.Set(g, f); changed {
		mc.sendAll(delta)
	}
	if r, w := mc.adv.Refused(), mc.adv.Widened(); r != refused || w != widened {
		mc.localRefused.Store(r)
		mc.localWidened.Store(w)
		mc.localLog.Log("group", g.String(), "max_groups", topology.MaxNodeGroups, "max_entries", topology.MaxNodeEntries)
	}
}

// readvertise offers every local group again, at each refresh: a group
// refused at the bounds (or a filter widened) gets in once others have
// left; the querier sends no event while a filter stays the same.
func (mc *Plane) readvertise() {
	if mc.adv.Refused() == 0 && mc.adv.Widened() == 0 {
		return
	}
	for _, gs := range mc.router.Groups(time.Now()) {
		if !linkScope(gs.Group) {
			mc.advertise(gs.Group, gs.Filter)
		}
	}
}

// partBudget is the largest membership message sent (a full state
// beyond it goes in parts): with the envelope, the route header and the
// seal it stays under a 1,400-byte underlay MTU.
const partBudget = 1100

// sendFull sends our whole state to one node, or to every node (zero ID),
// in as many messages as it takes.
func (mc *Plane) sendFull(to nodeid.ID) {
	for _, m := range mc.adv.FullParts(partBudget) {
		mc.send(to, m)
	}
}

// sendAll broadcasts m to every node.
func (mc *Plane) sendAll(m *topology.Message) { mc.send(nodeid.ID{}, m) }

// send sends m to one node, or to every node (zero ID).
func (mc *Plane) send(to nodeid.ID, m *topology.Message) {
	mb, err := m.MarshalBinary()
	if err != nil {
		mc.log.Error("membership message", "err", err)
		return
	}
	b := append([]byte{dataplane.KindMembership}, mb...)
	if to.IsZero() {
		mc.cfg.Data.BroadcastControl(b)
		return
	}
	if err := mc.cfg.Data.SendControl(to, b); err != nil {
		mc.log.Debug("membership not sent", "to", to.Short(), "err", err)
	}
}

// onControl takes a membership message from a node (a reader goroutine).
func (mc *Plane) onControl(from nodeid.ID, payload []byte, _ bool) error {
	var m topology.Message
	if err := m.UnmarshalBinary(payload[1:]); err != nil {
		return err
	}
	mc.loop.Post(func() {
		mc.probes.heard(from) // whatever it says, it is there
		if m.Kind == topology.KindSync {
			if !mc.syncDue(from, time.Now()) {
				mc.syncsRefused.Add(1)
				return
			}
			mc.sendFull(from)
			if mc.cfg.OnSync != nil {
				mc.cfg.OnSync(from)
			}
			return
		}
		before, over, bad := mc.table.Refused(), mc.table.Oversize(), mc.table.BadParts()
		changed, needSync := mc.table.Apply(from, &m, time.Now())
		if n := mc.table.Refused(); n != before {
			mc.tableFull.Store(n)
			mc.fullLog.Log("from", from.Short(), "max_nodes", topology.MaxTableNodes, "max_entries", topology.MaxTableEntries)
		}
		if n := mc.table.Oversize(); n != over {
			mc.oversize.Store(n)
			mc.oversizeLog.Log("from", from.Short(), "max_groups", topology.MaxNodeGroups, "max_entries", topology.MaxNodeEntries)
		}
		if n := mc.table.BadParts(); n != bad {
			mc.badParts.Store(n)
		}
		if needSync {
			mc.send(from, &topology.Message{Kind: topology.KindSync})
		}
		if changed {
			mc.dirty = true // published once the burst is through (Run)
		}
	})
	return nil
}

// Drops counts control messages refused, by reason (safe from any
// goroutine).
func (mc *Plane) Drops() map[string]uint64 {
	return map[string]uint64{"sync_rate_limited": mc.syncsRefused.Load(), "membership_table_full": mc.tableFull.Load(),
		"membership_oversize": mc.oversize.Load(), "membership_bad_parts": mc.badParts.Load(),
		"gone_ignored": mc.probes.ignored.Load(), "bad_tree_message": mc.trees.badMsgs.Load(), "tree_queue_full": mc.trees.queueFull.Load(),
		"tree_queries_limited": mc.trees.queriesLimited.Load(), "tree_joins_refused": mc.trees.refused.Load()}
}

// syncEvery is how often one node may have our full state on request: a
// Sync costs a full state (and a full host advert), so a member cannot
// make the overlay send it (or anyone) state in a loop.
const syncEvery = 5 * time.Second

// syncDue reports whether node from may have our state now (loop only).
func (mc *Plane) syncDue(from nodeid.ID, now time.Time) bool {
	if mc.synced == nil {
		mc.synced = map[nodeid.ID]time.Time{}
	}
	if now.Sub(mc.lastGen) > syncEvery {
		for id, t := range mc.synced {
			if now.Sub(t) >= syncEvery {
				delete(mc.synced, id)
			}
		}
		mc.lastGen = now
	}
	if t, ok := mc.synced[from]; ok && now.Sub(t) < syncEvery {
		return false
	}
	mc.synced[from] = now
	return true
}

// LinkUp: a new link gets our full state, and the first one schedules
// the join broadcast.
func (mc *Plane) LinkUp(peer nodeid.ID) {
	mc.loop.Post(func() {
		mc.sendFull(peer)
		if !mc.joined {
			mc.joined = true
			time.AfterFunc(JoinDelay, func() { mc.loop.Post(mc.join) })
		}
	})
}

// LinkLost: the peer's memberships go with the link, and the peer is
// asked (routed) for its state in case it is still there. A link closed
// on purpose changes nothing: the peer is reachable through the ring.
func (mc *Plane) LinkLost(peer nodeid.ID) {
	mc.loop.Post(func() {
		if mc.table.Remove(peer) {
			mc.publish()
		}
		mc.probe(peer, true)
	})
}

// join tells every node our state and asks for theirs.
func (mc *Plane) join() {
	mc.sendFull(nodeid.ID{})
	mc.sendAll(&topology.Message{Kind: topology.KindSync})
}

// publish replaces the state the data plane reads, after memberships
// changed (and settles the trees, which follow them).
func (mc *Plane) publish() {
	mc.dirty, mc.published = false, time.Now()
	old := mc.state.Load()
	local := map[netip.Addr]filter.Filter{}
	for g := range mc.adv.Groups() {
		local[g] = mc.router.Filter(g)
	}
	st := &state{view: mc.table.View(), local: local, stats: old.stats, trees: old.trees, treeMode: old.treeMode}
	mc.state.Store(st)
	mc.settleTrees(st, time.Now())
}

var _ dataplane.Multicast = (*Plane)(nil)

// querierSeen is what a querier change is judged by.
type querierSeen struct {
	self    bool
	other   netip.Addr
	version int
}

// logQuerierChanges logs each change of the querier on the TAP: this node
// takes the role, or defers to another (which, and the version it speaks).
func (mc *Plane) logQuerierChanges() {
	if mc.queriers == nil {
		mc.queriers = map[int]querierSeen{}
	}
	for _, q := range mc.router.Queriers(time.Now()) {
		now := querierSeen{self: q.Querier, other: q.OtherQuerier, version: q.OtherVersion}
		was, known := mc.queriers[q.Family]
		if known && was == now {
			continue
		}
		mc.queriers[q.Family] = now
		proto := map[int]string{4: "IGMP", 6: "MLD"}[q.Family]
		switch {
		case now.self:
			mc.log.Info("querier: this node", "proto", proto, "version", q.Version)
		case now.other.IsValid():
			mc.log.Info("querier: another router; this node defers", "proto", proto, "querier", now.other.String(), "version", now.version)
		case known:
			mc.log.Info("querier: none", "proto", proto)
		}
	}
}
