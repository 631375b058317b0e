package topology

import (
	"maps"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// SyncRetry is how long Apply waits, after asking a node for a full state,
// before it asks again on the next gap. A burst of deltas behind one lost
// message then costs one Sync and one Full, not one per delta; if the Sync
// or its answer is lost, the next gap after SyncRetry asks again, and the
// sender's periodic refresh heals it regardless.
const SyncRetry = time.Second

// Table is the receiving side of membership: what every remote node has
// advertised. It is fed by Apply and read through View snapshots. Not safe
// for concurrent use: it belongs to the node's control loop, and the data
// path reads only Views.
type Table struct {
	nodes    map[nodeid.ID]*remote
	view     *View // the snapshot of the current state; nil after a change
	entries  int   // groups and sources held, parts waiting included
	refused  uint64
	oversize uint64
	badParts uint64
}

// MaxTableNodes bounds the nodes a Table holds: messages from a node not
// held beyond it are refused (Refused counts them). Nodes come only from
// messages their origin signed, so it bounds the network one node tracks.
const MaxTableNodes = 10_000

// MaxTableEntries bounds the groups and sources a Table holds of all
// nodes together (each group one, each source one), parts of states not
// complete yet included: a message that would take it beyond is refused
// (Refused), and a node whose delta would is dropped until its next full
// state. About 100 MiB at the bound.
const MaxTableEntries = 1 << 21

// Refused is the number of messages refused because the table was full
// (MaxTableNodes, MaxTableEntries).
func (t *Table) Refused() uint64 { return t.refused }

// Oversize is the number of messages refused because they would take
// their sender's state beyond MaxNodeGroups or MaxNodeEntries, which no
// node advertises (its state is dropped until the next full state).
func (t *Table) Oversize() uint64 { return t.oversize }

// BadParts is the number of states sent in parts that were refused
// whole: their parts' groups were not in ascending address order.
func (t *Table) BadParts() uint64 { return t.badParts }

// remote is what the table holds about one node.
//
// Invariant: when synced, groups is exactly the sender's state at (epoch,
// seq). Deltas are applied only in order, so the state is always one the
// sender really had, never a mix; after a gap it stays at the last good
// seq until a full state arrives.
type remote struct {
	synced  bool
	epoch   uint64
	seq     uint64
	groups  map[netip.Addr]member
	entries int           // of groups (MaxNodeEntries)
	pend    *pending      // a state coming in parts
	refresh time.Duration // the sender's, from its latest message
	heard   time.Time     // latest message of any kind
	asked   time.Time     // when Apply last returned needSync; zero: not waiting
}

// pending is a full state whose parts are coming in (KindPart).
type pending struct {
	epoch, seq      uint64
	parts           int
	got             map[int][]Group // by part
	groups, entries int
}

func groupEntries(groups []Group) int {
	n := 0
	for _, g := range groups {
		n += entriesOf(g.Filter)
	}
	return n
}

type member struct {
	filter filter.Filter
	since  time.Time // when this node joined the group, as seen here
}

// NewTable returns an empty Table.
func NewTable() *Table { return &Table{nodes: make(map[nodeid.ID]*remote)} }

// Apply takes message m received from node from at now. changed reports
// whether the membership View shows has changed, so the caller knows to
// publish a new View. needSync reports that from must be sent a KindSync
// (Table.Sync builds it): a delta arrived that cannot be applied because
// Seq skips one, or the epoch is not the one held (a restart, or a node
// never heard in full). Apply asks at most once per SyncRetry per node.
//
// Stale messages (a delta or full older than the state held, e.g. reordered
// behind a newer one) change nothing but still count as hearing the node.
// KindSync is not for the table (the caller answers it with
// Advertiser.Full) and, like a message that fails validation, is ignored.
// Apply copies what it keeps: m may be reused.
func (t *Table) Apply(from nodeid.ID, m *Message, now time.Time) (changed, needSync bool) {
	if m.Kind == KindSync || m.validate() != nil {
		return false, false
	}
	r := t.nodes[from]
	if r == nil {
		if len(t.nodes) >= MaxTableNodes {
			t.refused++
			return false, false
		}
		r = &remote{groups: make(map[netip.Addr]member)}
		t.nodes[from] = r
	}
	r.heard = now
	current := r.synced && r.epoch == m.Epoch
	switch {
	case current && m.Seq < r.seq, current && m.Kind == KindDelta && m.Seq == r.seq:
		return false, false // stale or duplicate
	case m.Kind == KindPart:
		if current && m.Seq == r.seq {
			return false, false // the state held, again
		}
		r.refresh = m.Refresh
		return t.part(from, r, m, now), false
	case m.Kind == KindFull:
		if !t.fits(r, len(m.Groups), groupEntries(m.Groups)) {
			return false, false
		}
		t.dropPending(r)
		r.synced, r.epoch, r.seq, r.refresh, r.asked = true, m.Epoch, m.Seq, m.Refresh, time.Time{}
		return t.replace(r, m.Groups, now), false
	case current && m.Seq == r.seq+1:
		r.seq, r.refresh = m.Seq, m.Refresh
		changed = t.update(r, m.Groups, now)
		if len(r.groups) > MaxNodeGroups || r.entries > MaxNodeEntries || t.entries > MaxTableEntries {
			// Beyond what any node advertises, or what this table holds:
			// the node's state goes until a full state fits.
			if t.entries > MaxTableEntries {
				t.refused++
			} else {
				t.oversize++
			}
			return t.Remove(from) || changed, false
		}
		return changed, false
	}
	// A gap, another epoch, or a node not yet heard in full. Keep what is
	// held (likely still mostly right) until the full state arrives, and
	// take the refresh so that expiry works even for a node never synced.
	r.refresh = m.Refresh
	if !r.asked.IsZero() && now.Sub(r.asked) < SyncRetry {
		return false, false
	}
	r.asked = now
	return false, true
}

// fits reports whether a full state of groups and entries may replace
// r's, counting the refusal when not.
func (t *Table) fits(r *remote, groups, entries int) bool {
	switch {
	case groups > MaxNodeGroups || entries > MaxNodeEntries:
		t.oversize++
		return false
	case t.entries-r.entries+entries > MaxTableEntries:
		t.refused++
		return false
	}
	return true
}

// part takes one part of a full state from node from; once every part is
// in, the state replaces r's as a KindFull's would. Parts of another
// state than the one coming in start it over.
func (t *Table) part(from nodeid.ID, r *remote, m *Message, now time.Time) (changed bool) {
	p := r.pend
	if p == nil || p.epoch != m.Epoch || p.seq != m.Seq || p.parts != m.Parts {
		t.dropPending(r)
		p = &pending{epoch: m.Epoch, seq: m.Seq, parts: m.Parts, got: map[int][]Group{}}
		r.pend = p
	}
	if _, dup := p.got[m.Part]; dup {
		return false
	}
	e := groupEntries(m.Groups)
	switch {
	case p.groups+len(m.Groups) > MaxNodeGroups || p.entries+e > MaxNodeEntries:
		t.oversize++
		t.dropPending(r)
		return false
	case t.entries+e > MaxTableEntries:
		t.refused++
		return false
	}
	groups := make([]Group, len(m.Groups))
	for i, g := range m.Groups {
		groups[i] = Group{Addr: g.Addr, Filter: g.Filter.Clone()}
	}
	p.got[m.Part] = groups
	p.groups += len(groups)
	p.entries += e
	t.entries += e
	if len(p.got) < p.parts {
		return false
	}
	all := make([]Group, 0, p.groups)
	for i := range p.parts {
		all = append(all, p.got[i]...)
	}
	t.dropPending(r)
	for i := 1; i < len(all); i++ {
		if all[i-1].Addr.Compare(all[i].Addr) >= 0 {
			t.badParts++
			return false
		}
	}
	if !t.fits(r, len(all), groupEntries(all)) {
		return false
	}
	r.synced, r.epoch, r.seq, r.asked = true, m.Epoch, m.Seq, time.Time{}
	return t.replace(r, all, now)
}

// dropPending forgets the parts r had of a state coming in.
func (t *Table) dropPending(r *remote) {
	if r.pend != nil {
		t.entries -= r.pend.entries
		r.pend = nil
	}
}

// replace makes r's state exactly groups (a full state), keeping the join
// time of groups r was already a member of.
func (t *Table) replace(r *remote, groups []Group, now time.Time) (changed bool) {
	next := make(map[netip.Addr]member, len(groups))
	for _, g := range groups {
		old, had := r.groups[g.Addr]
		switch {
		case had && old.filter.Equal(g.Filter):
			next[g.Addr] = old
		case had:
			next[g.Addr], changed = member{g.Filter.Clone(), old.since}, true
		default:
			next[g.Addr], changed = member{g.Filter.Clone(), now}, true
		}
	}
	changed = changed || len(next) != len(r.groups)
	e := groupEntries(groups)
	t.entries += e - r.entries
	r.groups, r.entries = next, e
	t.dirty(changed)
	return changed
}

// update applies a delta's groups to r; INCLUDE{} removes a group.
func (t *Table) update(r *remote, groups []Group, now time.Time) (changed bool) {
	for _, g := range groups {
		old, had := r.groups[g.Addr]
		switch {
		case g.Filter.Empty():
			if had {
				delete(r.groups, g.Addr)
				t.moveEntries(r, -entriesOf(old.filter))
				changed = true
			}
		case had && old.filter.Equal(g.Filter):
		case had:
			r.groups[g.Addr], changed = member{g.Filter.Clone(), old.since}, true
			t.moveEntries(r, entriesOf(g.Filter)-entriesOf(old.filter))
		default:
			r.groups[g.Addr], changed = member{g.Filter.Clone(), now}, true
			t.moveEntries(r, entriesOf(g.Filter))
		}
	}
	t.dirty(changed)
	return changed
}

func (t *Table) moveEntries(r *remote, d int) {
	r.entries += d
	t.entries += d
}

func (t *Table) dirty(changed bool) {
	if changed {
		t.view = nil
	}
}

// Sync returns the KindSync to send to node after Apply said needSync. It
// names the epoch and seq held, which only logs use.
func (t *Table) Sync(node nodeid.ID) *Message {
	m := &Message{Kind: KindSync}
	if r := t.nodes[node]; r != nil && r.synced {
		m.Epoch, m.Seq = r.epoch, r.seq
	}
	return m
}

// Remove forgets node: its link is gone for good or the node has left the
// overlay. It reports whether the View changes. A message that arrives
// from node afterwards starts over, as from a node never heard.
func (t *Table) Remove(node nodeid.ID) bool {
	r := t.nodes[node]
	if r == nil {
		return false
	}
	delete(t.nodes, node)
	t.dropPending(r)
	t.entries -= r.entries
	t.dirty(len(r.groups) > 0)
	return len(r.groups) > 0
}

// Expire forgets every node not heard from (any message) for 3× its
// refresh interval, and reports whether the View changes. Three intervals
// let two refreshes in a row be lost before a live node's groups vanish.
func (t *Table) Expire(now time.Time) bool {
	changed := false
	maps.DeleteFunc(t.nodes, func(_ nodeid.ID, r *remote) bool {
		if now.Sub(r.heard) < 3*r.refresh {
			return false
		}
		t.dropPending(r)
		t.entries -= r.entries
		changed = changed || len(r.groups) > 0
		return true
	})
	t.dirty(changed)
	return changed
}

// View returns the snapshot of the current membership. It is built on the
// first call after a change and shared until the next one, so callers may
// call View after every Apply and publish the result (for instance through
// an atomic.Pointer) when it differs from the previous one.
func (t *Table) View() *View {
	if t.view == nil {
		t.view = buildView(t.nodes)
	}
	return t.view
}
