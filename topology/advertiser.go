package topology

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// DefaultRefresh is the refresh interval of a new Advertiser. Links report
// their own loss (and the node calls Table.Remove), so the refresh only has
// to heal lost messages and catch silent failures: 30 s keeps a full state
// per link per half minute cheap, and forgets a vanished node after 90 s.
const DefaultRefresh = 30 * time.Second

// Advertiser is the sending side of membership: this node's local
// membership (learnt by the IGMP/MLD querier on its TAP) and the messages
// that describe it. Like the rest of the package it is not safe for
// concurrent use; it belongs to the node's control loop.
type Advertiser struct {
	epoch   uint64
	seq     uint64 // number of changes so far: the Seq of the latest delta
	refresh time.Duration
	groups  map[netip.Addr]filter.Filter // normalized; never INCLUDE{}
	entries int                          // groups and their sources (MaxNodeEntries)
	refused uint64
	widened uint64
}

// NewAdvertiser returns an Advertiser with no memberships at Seq 0. epoch
// must be random per process (crypto/rand or math/rand/v2 seeded from it),
// so that receivers tell a restarted node, whose Seq starts again at 0,
// from one they missed changes of.
func NewAdvertiser(epoch uint64) *Advertiser {
	return &Advertiser{epoch: epoch, refresh: DefaultRefresh, groups: make(map[netip.Addr]filter.Filter)}
}

// Epoch returns the epoch given to NewAdvertiser.
func (a *Advertiser) Epoch() uint64 { return a.epoch }

// Seq returns the number of changes so far (the Seq of the latest delta).
func (a *Advertiser) Seq() uint64 { return a.seq }

// Refresh returns the refresh interval messages announce.
func (a *Advertiser) Refresh() time.Duration { return a.refresh }

// SetRefresh sets the interval at which the node sends Full to every link,
// rounded up to whole seconds and clamped to 1 s..MaxRefresh, the range the
// wire carries. Receivers learn it from the next message.
func (a *Advertiser) SetRefresh(d time.Duration) {
	d = (d + time.Second - 1) / time.Second * time.Second
	a.refresh = min(max(d, time.Second), MaxRefresh)
}

// Refused counts the calls to Set that were ignored: a group address that
// is not multicast, an unknown Mode, or a new group beyond MaxNodeGroups
// or MaxNodeEntries.
func (a *Advertiser) Refused() uint64 { return a.refused }

// Widened counts the filters advertised as EXCLUDE{} (every source)
// because their sources would have taken the state beyond
// MaxNodeEntries.
func (a *Advertiser) Widened() uint64 { return a.widened }

// entriesOf is what a filter costs against MaxNodeEntries.
func entriesOf(f filter.Filter) int { return 1 + len(f.Sources) }

// Set records f as this node's filter for group and, if that changes the
// advertised state, returns the delta to send to every linked node. An
// INCLUDE{} filter removes the group.
//
// group and the sources are taken in the form parsers give them (4-in-6
// is unmapped, zones dropped). Sources that cannot occur in a frame of the
// group (other family, multicast, unspecified) are dropped; over MaxSources
// the filter is widened as normalize says. Set refuses, returning (nil,
// false) and counting it in Refused, a group that is not multicast, an
// unknown Mode, and a new group when MaxNodeGroups are already advertised
// or its filter would take the state beyond MaxNodeEntries: receivers
// bound every node's state, and would drop the lot. A changed filter of a
// group already advertised that would go beyond is widened to EXCLUDE{}
// instead (more traffic, none lost; Widened counts it).
func (a *Advertiser) Set(group netip.Addr, f filter.Filter) (delta *Message, changed bool) {
	group = canonical(group)
	f, ok := normalize(group, f)
	if !ok || !validGroup(group) {
		a.refused++
		return nil, false
	}
	old, had := a.groups[group]
	switch {
	case f.Empty() && !had:
		return nil, false
	case had && old.Equal(f):
		return nil, false
	case f.Empty():
		delete(a.groups, group)
		a.entries -= entriesOf(old)
	case !had && (len(a.groups) >= MaxNodeGroups || a.entries+entriesOf(f) > MaxNodeEntries):
		a.refused++
		return nil, false
	default:
		if had && a.entries-entriesOf(old)+entriesOf(f) > MaxNodeEntries {
			f = filter.Filter{Mode: filter.Exclude}
			if old.Equal(f) {
				return nil, false // widened already
			}
			a.widened++
		}
		if had {
			a.entries -= entriesOf(old)
		}
		a.groups[group] = f
		a.entries += entriesOf(f)
	}
	a.seq++
	return &Message{
		Kind:    KindDelta,
		Epoch:   a.epoch,
		Seq:     a.seq,
		Groups:  []Group{{Addr: group, Filter: f.Clone()}},
		Refresh: a.refresh,
	}, true
}

// Full returns the whole advertised state at the current Seq: sent on every
// new link, every Refresh interval, and in answer to a KindSync.
func (a *Advertiser) Full() *Message {
	m := &Message{Kind: KindFull, Epoch: a.epoch, Seq: a.seq, Refresh: a.refresh}
	if len(a.groups) > 0 {
		m.Groups = make([]Group, 0, len(a.groups))
	}
	for _, g := range slices.SortedFunc(maps.Keys(a.groups), netip.Addr.Compare) {
		m.Groups = append(m.Groups, Group{Addr: g, Filter: a.groups[g].Clone()})
	}
	return m
}

// FullParts returns the whole advertised state like Full, in as many
// messages as it takes: one KindFull when it fits budget bytes (and
// MaxGroups), or is a single group (which no split makes smaller), else
// KindPart messages of at most budget bytes each (a group bigger than
// budget alone in its part), in address order.
func (a *Advertiser) FullParts(budget int) []*Message {
	full := a.Full()
	if len(full.Groups) <= MaxGroups && full.Size() <= budget || len(full.Groups) == 1 {
		return []*Message{full}
	}
	var parts []*Message
	cur := &Message{Kind: KindPart, Epoch: a.epoch, Seq: a.seq, Refresh: a.refresh}
	size := cur.Size()
	for _, g := range full.Groups {
		al := g.Addr.BitLen() / 8
		n := 1 + al + 2 + al*len(g.Filter.Sources)
		if len(cur.Groups) > 0 && (len(cur.Groups) == MaxGroups || size+n > budget) {
			parts = append(parts, cur)
			cur = &Message{Kind: KindPart, Epoch: a.epoch, Seq: a.seq, Refresh: a.refresh}
			size = cur.Size()
		}
		cur.Groups = append(cur.Groups, g)
		size += n
	}
	parts = append(parts, cur)
	for i, p := range parts {
		p.Part, p.Parts = i, len(parts)
	}
	return parts
}

// Groups returns a copy of the advertised state: every group this node is
// a member of, with its normalized filter.
func (a *Advertiser) Groups() map[netip.Addr]filter.Filter {
	out := make(map[netip.Addr]filter.Filter, len(a.groups))
	for g, f := range a.groups {
		out[g] = f.Clone()
	}
	return out
}
