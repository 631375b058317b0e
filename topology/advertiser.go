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
	refused uint64
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
// is not multicast, an unknown Mode, or a new group beyond MaxGroups.
func (a *Advertiser) Refused() uint64 { return a.refused }

// Set records f as this node's filter for group and, if that changes the
// advertised state, returns the delta to send to every linked node. An
// INCLUDE{} filter removes the group.
//
// group and the sources are taken in the form parsers give them (4-in-6
// is unmapped, zones dropped). Sources that cannot occur in a frame of the
// group (other family, multicast, unspecified) are dropped; over MaxSources
// the filter is widened as normalize says. Set refuses, returning (nil,
// false) and counting it in Refused, a group that is not multicast, an
// unknown Mode, and a new group when MaxGroups are already advertised: the
// wire bounds every node's state, and a receiver would drop the lot.
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
	case !had && len(a.groups) >= MaxGroups:
		a.refused++
		return nil, false
	default:
		a.groups[group] = f
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

// Groups returns a copy of the advertised state: every group this node is
// a member of, with its normalized filter.
func (a *Advertiser) Groups() map[netip.Addr]filter.Filter {
	out := make(map[netip.Addr]filter.Filter, len(a.groups))
	for g, f := range a.groups {
		out[g] = f.Clone()
	}
	return out
}
