package igmp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Config is the querier configuration of both protocols. Zero durations,
// Version and Robustness take the RFC defaults (RFC 3376 §8, RFC 3810 §9):
// version 3, query interval 125 s, query response interval 10 s, last member
// query interval 1 s, robustness 2.
type Config struct {
	// Version is the IGMP version the querier speaks, 1..3. MLD follows:
	// 3 → MLDv2, 1 or 2 → MLDv1.
	Version int
	// QueryInterval is the time between general queries; startup queries
	// go at a quarter of it. At most 31744 s, the largest QQIC.
	QueryInterval time.Duration
	// QueryResponseInterval is the Max Resp Time of general queries; below
	// QueryInterval, at least 100 ms, at most 25.5 s for IGMPv2 and 3174.4 s
	// for IGMPv3 (the largest codes).
	QueryResponseInterval time.Duration
	// LastMemberQueryInterval is the Max Resp Time of group-specific and
	// group-and-source-specific queries and the time between their
	// retransmissions; same range as QueryResponseInterval.
	LastMemberQueryInterval time.Duration
	// Robustness is the expected packet loss allowance, 1..100: the
	// startup and last-member query counts and the factor of every
	// membership timeout. Values above 7 are sent as QRV 0 (RFC 3376 §4.1.6).
	Robustness int

	// IPv4 is the source of IGMP queries. Linux (6.18, measured by
	// TestKernelQuerySources in igmp_linux_test.go) answers queries:
	//   - from another address of the TAP's subnet: yes;
	//   - from 0.0.0.0: yes (IGMP is exempt from its source check);
	//   - from the TAP's own address: NO, dropped as a martian source
	//     (unless net.ipv4.conf.*.accept_local=1);
	//   - from outside the subnet: only with rp_filter off.
	// The source MAC does not matter (even the TAP's own MAC works). So in
	// host mode use a spare address of the TAP's subnet, never the TAP's
	// own. Invalid (or 0.0.0.0) means queries go out from 0.0.0.0 and the
	// router defers to any other querier it hears.
	IPv4 netip.Addr
	// IPv6 is the link-local (fe80::/10) source of MLD queries. Linux
	// drops MLD queries whose source is not link-local (RFC 3810 §6.2),
	// even its own global address, and accepts any link-local source,
	// even the TAP's own. Invalid means no MLD querier: reports are still
	// tracked and the router defers to any other querier.
	IPv6 netip.Addr
	// MAC is the source MAC of query frames; frames read back with this
	// source are our own and are ignored. ipopd uses a virtual router MAC,
	// not the TAP's own.
	MAC net.HardwareAddr

	DisableIPv4, DisableIPv6 bool // ignore IGMP or MLD altogether
}

// Limits that keep a misbehaving host from growing the table without bound.
const (
	maxGroups  = 4096 // per family
	maxSources = 1024 // per group
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
	Filter Filter
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

func (c *Config) defaults() {
	if c.Version == 0 {
		c.Version = 3
	}
	if c.QueryInterval == 0 {
		c.QueryInterval = 125 * time.Second
	}
	if c.QueryResponseInterval == 0 {
		c.QueryResponseInterval = 10 * time.Second
	}
	if c.LastMemberQueryInterval == 0 {
		c.LastMemberQueryInterval = time.Second
	}
	if c.Robustness == 0 {
		c.Robustness = 2
	}
}

func (c *Config) validate() error {
	bad := func(what string, v any, allowed string) error {
		return fmt.Errorf("%w: %s %v; allowed: %s", ErrConfig, what, v, allowed)
	}
	// The response intervals must fit the codes of the versions in use and
	// be at least one unit of IGMP's 1/10 s: a zero code would turn an
	// IGMPv2 query into a v1 query.
	maxResp := 8387584 * time.Millisecond // MLDv2
	switch {
	case !c.DisableIPv4 && c.Version == 2:
		maxResp = 25500 * time.Millisecond
	case !c.DisableIPv4:
		maxResp = 3174400 * time.Millisecond
	case c.Version < 3:
		maxResp = 65535 * time.Millisecond // MLDv1
	}
	switch {
	case c.Version < 1 || c.Version > 3:
		return bad("version", c.Version, "1..3")
	case c.QueryInterval < time.Second || c.QueryInterval > maxCode8*time.Second:
		return bad("query interval", c.QueryInterval, "1s..31744s")
	case c.QueryResponseInterval < 100*time.Millisecond || c.QueryResponseInterval > maxResp:
		return bad("query response interval", c.QueryResponseInterval, fmt.Sprintf("100ms..%v", maxResp))
	case c.QueryResponseInterval >= c.QueryInterval:
		return bad("query response interval", c.QueryResponseInterval, "below the query interval")
	case c.LastMemberQueryInterval < 100*time.Millisecond || c.LastMemberQueryInterval > maxResp:
		return bad("last member query interval", c.LastMemberQueryInterval, fmt.Sprintf("100ms..%v", maxResp))
	case c.Robustness < 1 || c.Robustness > 100:
		return bad("robustness", c.Robustness, "1..100")
	case c.IPv4.IsValid() && (!c.IPv4.Is4() || c.IPv4.IsMulticast() || c.IPv4 == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return bad("IPv4 query source", c.IPv4, "a unicast IPv4 address, or none")
	case c.IPv6.IsValid() && !c.IPv6.IsLinkLocalUnicast():
		return bad("IPv6 query source", c.IPv6, "a link-local address (fe80::/10), or none")
	case len(c.MAC) != 6 || c.MAC[0]&1 != 0:
		return bad("MAC", c.MAC, "a unicast Ethernet address")
	case c.DisableIPv4 && c.DisableIPv6:
		return bad("families", "none", "IPv4, IPv6 or both")
	}
	return nil
}

// Input handles one Ethernet frame read from the link, carrying IGMP or MLD
// (optionally behind one 802.1Q tag). It first fires the timers due at or
// before now. A frame of a disabled family, or one we sent ourselves, is
// ignored. An error means the frame was dropped; it wraps one of the ErrX
// values and is counted in Stats.
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
func (r *Router) Filter(group netip.Addr) Filter {
	f := r.fams[b2i(group.Is6() && !group.Is4In6())]
	if f == nil {
		return Filter{}
	}
	if g := f.groups[group]; g != nil {
		return g.filter()
	}
	return Filter{}
}

// markDirty queues g for the next flush.
func (r *Router) markDirty(g *group) {
	r.nextValid = false
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
			r.events = append(r.events, Event{Group: g.addr, Filter: Filter{Mode: f.Mode, Sources: slices.Clone(f.Sources)}})
		}
		if !f.Member() {
			delete(g.fam.groups, g.addr)
		}
	}
	clear(r.dirty)
	r.dirty = r.dirty[:0]
}
