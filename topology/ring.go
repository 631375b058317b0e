package topology

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// DefaultRingRefresh is how often a node re-announces its links when
// nothing changed. Links detect a dead peer themselves (ICE consent, about
// 10 s) and changes are announced at once, so the refresh only heals lost
// announcements; leases (Learn, LinkDown) last 3 refreshes. A minute
// keeps a node's cost at rest to one small message per link per minute.
const DefaultRingRefresh = time.Minute

// DefaultHoldDown is how long a node whose link failed is kept out of
// the ring's view. A crash is noticed by each of the node's peers within
// a few seconds of each other (ICE consent); a peer that has not noticed
// yet still lists the dead node, and without the hold-down that would put
// it back as a successor and cost a set-up timeout. 30 s covers the skew
// with margin; a link that failed between two live nodes is tried again
// after it, while the other successors carry the ring.
const DefaultHoldDown = 30 * time.Second

// RingConfig is the ring part of the topology config.
type RingConfig struct {
	Successors int // topology.successors: links to the next nodes clockwise, ≥ 1
	Chords     int // topology.chords: Symphony long-distance links, ≥ 0
	// Refresh: announce links at least this often; 0 means
	// DefaultRingRefresh. Leases last 3×Refresh.
	Refresh time.Duration
	// HoldDown: after a link fails, its node is left out of the view and
	// not asked for this long. 0 means DefaultHoldDown.
	HoldDown time.Duration
	// Attested, when set, says whether a node is known to exist (its
	// certificate was seen, or the rendezvous listed it). Only such nodes
	// of a peer's Neighbors count: a peer cannot fill the ring with
	// invented IDs. nil believes every ID.
	Attested func(nodeid.ID) bool
	// Proven, when set, says whether peer's claim of a link to id is
	// proven (id signed it: trust.LinkProof). Only proven claims make a
	// peer a way toward id in Routes (lookahead and relays): a peer
	// cannot attract traffic by claiming links it does not have. Call
	// Reprove when its answers change. nil believes every claim.
	Proven func(peer, id nodeid.ID) bool
}

// MaxPeerLinks bounds the links of one peer's Neighbors that the ring
// keeps (the nearest this node): a node has a few successors, chords and
// on-demand links, so a longer list is noise or an attempt to eclipse
// this node's real neighbours.
const MaxPeerLinks = 32

func (c RingConfig) withDefaults() RingConfig {
	c.Successors = max(c.Successors, 1)
	c.Chords = max(c.Chords, 0)
	if c.Refresh <= 0 {
		c.Refresh = DefaultRingRefresh
	}
	if c.HoldDown <= 0 {
		c.HoldDown = DefaultHoldDown
	}
	return c
}

// Ring is one node's view of the ring: the nodes it knows, the links it
// has, and from them the links it wants (Desired) and what to do about
// them (Tick). Not safe for concurrent use: it belongs to the node's
// control loop, like Table.
//
// A node knows:
//   - the nodes it links to (first-hand), while the link is up;
//   - the nodes each of those lists in its latest Neighbors: link state
//     of the two-hop neighbourhood, replaced by each new Neighbors and
//     gone with the link, so a node that crashed leaves every view as
//     soon as its peers announce the lost link;
//   - what Learn was told (the rendezvous's presence list), on a lease of
//     3×Refresh that each Learn renews, and likewise a peer and what it
//     listed when its link is closed on purpose (LinkDown).
//
// Less the nodes held down after a failed link (LinkFailed), which are
// left out, whatever lists them, until the hold-down ends.
type Ring struct {
	self  nodeid.ID
	me    u256
	cfg   RingConfig
	draws []u256 // chord target distances, see newDraws

	learnt   map[nodeid.ID]time.Time // Learn: lease expiry
	leased   []nodeid.ID             // learnt's keys, ascending (see lease)
	held     map[nodeid.ID]time.Time // LinkFailed: held down until
	links    map[nodeid.ID]*ringPeer // linked now
	onDemand map[nodeid.ID]bool      // SetOnDemand
	nextScan time.Time               // no lease or hold-down ends before this

	// Derived from the maps above, rebuilt when dirty.
	dirty  bool
	nodes  []nodeid.ID // everything known, ascending
	linked []nodeid.ID // links, ascending
	succ   []nodeid.ID // ring order
	chords []nodeid.ID // ring order
	sticky []nodeid.ID // chords before the rebuild that are linked, ascending

	sent   []NeighborLink // what Neighbors last announced
	sentAt time.Time
	plan   ringPlan // Tick's answer while nothing changes
	routes *Routes  // Routes' snapshot; nil after a rebuild

	ignored  atomic.Uint64 // links of peers' Neighbors not believed (Ignored)
	unlinked atomic.Uint64 // Neighbors from nodes not linked (Unlinked)
}

// Ignored is how many links listed in peers' Neighbors were not believed:
// unattested nodes, and those beyond MaxPeerLinks. Safe from any
// goroutine.
func (r *Ring) Ignored() uint64 { return r.ignored.Load() }

// Unlinked is how many Neighbors messages came from a node this ring
// holds no link to, and were dropped whole. Safe from any goroutine.
func (r *Ring) Unlinked() uint64 { return r.unlinked.Load() }

// ringPeer is what the ring holds about one link.
type ringPeer struct {
	suspect bool        // silent of late: routes go around it (Suspect)
	heard   bool        // a Neighbors naming this node arrived on the link
	wants   bool        // ... and it marked the link Wanted
	lists   []nodeid.ID // the peer's links, from its latest Neighbors, self left out
}

// NewRing returns the view of node self, knowing nobody.
func NewRing(self nodeid.ID, cfg RingConfig) *Ring {
	cfg = cfg.withDefaults()
	return &Ring{
		self: self, me: load(self), cfg: cfg, draws: newDraws(self, cfg.Chords),
		learnt: make(map[nodeid.ID]time.Time), held: make(map[nodeid.ID]time.Time),
		links: make(map[nodeid.ID]*ringPeer), onDemand: make(map[nodeid.ID]bool),
	}
}

// Self returns the ID the ring was made for.
func (r *Ring) Self() nodeid.ID { return r.self }

// Config returns the configuration in use, defaults filled in.
func (r *Ring) Config() RingConfig { return r.cfg }

func (r *Ring) ttl() time.Duration { return 3 * r.cfg.Refresh }

// Learn records that node id is alive at now, as the rendezvous's
// presence list says: feed the whole list when it arrives and again every
// Refresh while the rendezvous is connected, so that the leases (3×Refresh)
// outlive a rendezvous restart but not a node that is gone for good.
// It reports whether id had no lease before (it may still have been
// known through a link or a peer's list).
func (r *Ring) Learn(id nodeid.ID, now time.Time) bool {
	if id == r.self || id.IsZero() {
		return false
	}
	return r.lease(id, now.Add(r.ttl()))
}

// lease makes id known until exp, unless it already is for longer, and
// reports whether it had no lease. Renewing is the common case (the
// presence list again and again) and costs a map lookup; a new lease
// goes into the sorted leased list in place, so that a join in a large
// ring costs each node a copy, not a sort.
func (r *Ring) lease(id nodeid.ID, exp time.Time) bool {
	old, had := r.learnt[id]
	if had && !old.Before(exp) {
		return false
	}
	r.learnt[id] = exp
	if had {
		return false
	}
	i, _ := slices.BinarySearchFunc(r.leased, id, nodeid.ID.Compare)
	r.leased = slices.Insert(r.leased, i, id)
	r.schedule(exp)
	r.dirty = true
	return true
}

// unlease drops id's lease, if any.
func (r *Ring) unlease(id nodeid.ID) {
	if _, had := r.learnt[id]; !had {
		return
	}
	delete(r.learnt, id)
	if i, ok := slices.BinarySearchFunc(r.leased, id, nodeid.ID.Compare); ok {
		r.leased = slices.Delete(r.leased, i, i+1)
	}
	r.dirty = true
}

// Forget drops what Learn said of id at once: the rendezvous says it
// left. Links and peers' lists that name id still count.
func (r *Ring) Forget(id nodeid.ID) { r.unlease(id) }

// LinkUp records that a link to id is up (whichever side set it up). It
// ends a hold-down of id: a link is the best evidence of life.
func (r *Ring) LinkUp(id nodeid.ID, now time.Time) {
	if id == r.self || id.IsZero() || r.links[id] != nil {
		return
	}
	r.links[id] = &ringPeer{}
	delete(r.held, id)
	r.dirty = true
}

// LinkDown records that the link to id was closed on purpose (Tick said
// Close, or the peer closed it). id is alive, and so, as of its last
// Neighbors, were the nodes it listed: all of them stay known on a lease
// as if learnt at now. A joining node walks toward its place through
// links it closes again, and this keeps what each step taught it.
func (r *Ring) LinkDown(id nodeid.ID, now time.Time) {
	p := r.links[id]
	if p == nil {
		return
	}
	delete(r.links, id)
	exp := now.Add(r.ttl())
	r.lease(id, exp)
	for _, n := range p.lists {
		if _, held := r.held[n]; !held {
			r.lease(n, exp)
		}
	}
	r.dirty = true
}

// LinkFailed records that the link to id was lost, that setting it up
// failed, or that id said it is leaving: what Learn said of id is
// dropped, and id is held down for HoldDown: left out of the view
// whatever lists it, and not asked for. When the hold-down ends, id is
// back at once if a peer still lists it (it was alive and only this link
// failed), else when something next mentions it.
func (r *Ring) LinkFailed(id nodeid.ID, now time.Time) {
	if id == r.self || id.IsZero() {
		return
	}
	delete(r.links, id)
	r.unlease(id)
	r.held[id] = now.Add(r.cfg.HoldDown)
	r.schedule(r.held[id])
	r.dirty = true
}

// Alive records that id showed itself alive (it asked for a new link,
// in a message only it can sign): a hold-down on it ends at once. The
// hold-down keeps a dead node out of the view while others still list
// it; a node that restarted must not wait it out.
func (r *Ring) Alive(id nodeid.ID) {
	if _, held := r.held[id]; held {
		delete(r.held, id)
		r.dirty = true
	}
}

// schedule makes update look for expired entries no later than t.
func (r *Ring) schedule(t time.Time) {
	if r.nextScan.IsZero() || t.Before(r.nextScan) {
		r.nextScan = t
	}
}

// SetOnDemand replaces the set of on-demand links the node wants
// (OnDemand.Links), so that Tick connects and keeps them and Neighbors
// marks them Wanted.
func (r *Ring) SetOnDemand(ids []nodeid.ID) {
	clear(r.onDemand)
	for _, id := range ids {
		if id != r.self && !id.IsZero() {
			r.onDemand[id] = true
		}
	}
	r.plan.ok = false
}
