package igmp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// Router is the multicast router of one link (see the package comment).
type Router struct {
	mac    net.HardwareAddr
	fams   [2]*family // IPv4 (IGMP) and IPv6 (MLD); nil when disabled
	out    [][]byte
	events []Event
	dirty  []*group // groups whose filter may have changed since the last flush
	stats  Stats

	next      time.Time // cache of Next
	nextValid bool
}

// Event says that the filter of a group changed; INCLUDE{} means the last
// member left. Events come in the order the changes were made, those of
// one Input or Advance call sorted by group.
type Event struct {
	Group  netip.Addr
	Filter filter.Filter
}

// New returns a Router that has just started: its first startup queries are
// due at now (Next returns now, and Advance(now) sends them).
func New(cfg Config, now time.Time) (*Router, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Router{mac: slices.Clone(cfg.MAC)}
	if !cfg.DisableIPv4 {
		r.fams[0] = newFamily(r, false, cfg, now)
	}
	if !cfg.DisableIPv6 {
		r.fams[1] = newFamily(r, true, cfg, now)
	}
	return r, nil
}

// Input handles one Ethernet frame read from the link, carrying IGMP or MLD
// (optionally behind one 802.1Q tag). It first fires the timers due at or
// before now. A frame of a disabled family, or one we sent ourselves, is
// ignored. An error means the frame was dropped; it wraps one of the ErrX
// values and is counted in Stats. frame is not kept after Input returns.
func (r *Router) Input(now time.Time, frame []byte) error {
	r.advance(now)
	err := r.input(now, frame)
	if err != nil {
		r.stats.Errors.count(err)
	}
	r.flush()
	return err
}

func (r *Router) input(now time.Time, frame []byte) error {
	p, err := parseFrame(frame)
	if err != nil {
		return err
	}
	v6 := p.src.Is6()
	f := r.fams[b2i(v6)]
	if f == nil {
		return nil
	}
	var m *Message
	if v6 {
		m, err = ParseMLDPacket(p.src, p.dst, p.payload)
	} else {
		m, err = ParseIGMP(p.payload)
	}
	if err != nil {
		return err
	}
	// RFC 2236 §2, RFC 3376 §4: TTL 1. RFC 3810 §5 and §6.2: hop limit 1,
	// Router Alert, a link-local source (:: allowed for reports, §5.2.13).
	// Router Alert is not required of IGMP: IGMPv1 hosts never sent it.
	switch {
	case p.hops != 1:
		return fmt.Errorf("%w: %v from %v with TTL %d", ErrNotLocal, m.Type, p.src, p.hops)
	case v6 && !p.alert:
		return fmt.Errorf("%w: %v from %v without Router Alert", ErrNotLocal, m.Type, p.src)
	case v6 && !p.src.IsLinkLocalUnicast() && (m.IsQuery() || !p.src.IsUnspecified()):
		return fmt.Errorf("%w: %v from %v", ErrNotLocal, m.Type, p.src)
	}
	if [6]byte(r.mac) == p.srcMAC || (f.canQuery && !f.self.IsUnspecified() && p.src == f.self) {
		f.stats.Own++
		return nil
	}
	return f.handle(now, p.src, m)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Advance fires every timer due at or before now, in time order. A
// periodic query that is late by more than its interval is sent once, not
// once per missed period.
func (r *Router) Advance(now time.Time) {
	r.advance(now)
	r.flush()
}

func (r *Router) advance(now time.Time) {
	var last time.Time
	for {
		t := r.Next()
		if t.IsZero() || t.After(now) {
			return
		}
		if !last.IsZero() && !t.After(last) {
			// Every firing moves its timer past t; if one did not, stop
			// rather than spin. Unreachable unless this package has a bug.
			return
		}
		last = t
		for _, f := range r.fams {
			if f != nil {
				f.fire(t, now)
			}
		}
		r.nextValid = false
	}
}

// Next returns when the earliest timer is due (zero if none is pending):
// the node should call Advance then.
func (r *Router) Next() time.Time {
	if !r.nextValid {
		r.next = time.Time{}
		for _, f := range r.fams {
			if f != nil {
				r.next = earliest(r.next, f.earliest())
			}
		}
		r.nextValid = true
	}
	return r.next
}

// earliest returns the earlier of two deadlines, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// TakeOutput returns the frames (queries) to write to the link, in order,
// and forgets them; the caller owns them.
func (r *Router) TakeOutput() [][]byte {
	out := r.out
	r.out = nil
	return out
}

// TakeEvents returns the membership changes since the last call.
func (r *Router) TakeEvents() []Event {
	ev := r.events
	r.events = nil
	return ev
}

// Stats returns the counters.
func (r *Router) Stats() Stats { return r.stats }

// Filter returns the current filter of group; INCLUDE{} for a group
// nobody on the link has joined.
func (r *Router) Filter(group netip.Addr) filter.Filter {
	f := r.fams[b2i(group.Is6() && !group.Is4In6())]
	if f == nil {
		return filter.Filter{}
	}
	if g := f.groups[group]; g != nil {
		return g.filter()
	}
	return filter.Filter{}
}

// markDirty queues g for the next flush.
func (r *Router) markDirty(g *group) {
	g.fam.touch(g)
	if !g.dirty {
		g.dirty = true
		r.dirty = append(r.dirty, g)
	}
}

// flush turns the groups touched since the last flush into events and
// deletes the records of groups that have no member left.
func (r *Router) flush() {
	r.nextValid = false
	slices.SortFunc(r.dirty, func(a, b *group) int { return a.addr.Compare(b.addr) })
	for _, g := range r.dirty {
		g.dirty = false
		f := g.filter()
		if !f.Equal(g.reported) {
			g.reported = f
			r.events = append(r.events, Event{Group: g.addr, Filter: filter.Filter{Mode: f.Mode, Sources: slices.Clone(f.Sources)}})
		}
		if f.Empty() {
			delete(g.fam.groups, g.addr)
			g.gone = true
		}
	}
	clear(r.dirty)
	r.dirty = r.dirty[:0]
}
