package arp

import (
	"container/list"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Defaults of Config.
const (
	DefaultAge        = 5 * time.Minute
	DefaultMaxEntries = 65536
)

// How an entry's binding was learned (Entry.Via).
const (
	ViaARPRequest    = "arp-request"
	ViaARPReply      = "arp-reply"
	ViaGARP          = "garp"
	ViaNS            = "ns"
	ViaNA            = "na"
	ViaUnsolicitedNA = "unsolicited-na"
	ViaAdvert        = "advert"
)

// conflictLogEvery limits conflict logs to one per address per minute: two
// hosts fighting over an address would otherwise log every ARP they send.
const conflictLogEvery = time.Minute

// ownerName is how logs name the node a host sits behind: the zero ID is
// this node ("local"), others by their short ID.
func ownerName(id nodeid.ID) string {
	if id.IsZero() {
		return "local"
	}
	return id.Short()
}

// Config tunes a Table; zero or negative values take the defaults.
type Config struct {
	// Age is how long an entry lives without being seen again; only
	// entries seen within Age are used to answer requests.
	Age time.Duration
	// MaxEntries bounds the table; beyond it the least recently seen
	// entry is evicted (Stats.Evicted). Local hosts are also bounded by
	// MaxHosts, so that a full advert can list them all.
	MaxEntries int
	// Logger gets conflicts (Warn) and moves (Info); nil discards them.
	Logger *slog.Logger
}

// Entry is one binding, as Entries reports it.
type Entry struct {
	IP    netip.Addr
	MAC   [6]byte
	Owner nodeid.ID // zero when Local
	Local bool
	Role  Role   // IPv6: what the host's NAs said
	Via   string // how the current binding was learned: a Via constant
	// Learned is when the binding (this MAC at this owner) was made; Seen
	// is the last time anything confirmed it.
	Learned, Seen time.Time
}

// Stats counts what the Table did since NewTable.
type Stats struct {
	Answered   uint64 // requests answered with a Reply
	Forwarded  uint64 // Local decisions with Forward set
	Suppressed uint64 // requests for local targets: neither answered nor forwarded
	Conflicts  uint64 // a different MAC (or, in an advert, owner) claimed a bound address
	Moves      uint64 // bindings that changed MAC or owner
	Errors     uint64 // frames refused (malformed, or Remote from the zero node), invalid advert hosts
	Evicted    uint64 // entries dropped to stay within the limits
}

// Table is the IP → MAC → owner table. It is safe for concurrent use.
type Table struct {
	age time.Duration
	max int
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	entries map[netip.Addr]*entry
	// lru[0] holds local entries, lru[1] remote ones, least recently seen
	// at the front: eviction takes a front, Expire walks from the fronts.
	lru [2]list.List
	// dirty holds local addresses whose binding may differ from what our
	// deltas told (advertised); TakeAdvert settles them.
	dirty      map[netip.Addr]struct{}
	advertised map[netip.Addr]Host
	stats      Stats
}

type entry struct {
	Entry
	elem   *list.Element
	warned time.Time // last conflict logged
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	t := &Table{age: cfg.Age, max: cfg.MaxEntries, log: cfg.Logger,
		entries: make(map[netip.Addr]*entry), dirty: make(map[netip.Addr]struct{}),
		advertised: make(map[netip.Addr]Host)}
	if t.age <= 0 {
		t.age = DefaultAge
	}
	if t.max <= 0 {
		t.max = DefaultMaxEntries
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// claim is one piece of evidence that ip is at mac behind owner.
type claim struct {
	ip    netip.Addr
	mac   [6]byte
	owner nodeid.ID
	via   string
	role  Role // RoleUnknown: the evidence says nothing about it
	// override: an announcement (gratuitous ARP, unsolicited NA with O),
	// which replaces a different MAC instead of being a conflict.
	override bool
	// advert: an advert speaks only for its sender's own hosts, so it
	// never moves a binding from another owner (a late advert after a
	// move would otherwise move it back).
	advert bool
}

type outcome uint8

const (
	ignored    outcome = iota // not a host address or MAC
	refreshed                 // the binding stood; Seen (and Role) updated
	bound                     // a new binding, or one that changed MAC or owner
	conflicted                // refused; the old binding stays
)

func (t *Table) learnLocked(now time.Time, c claim) outcome {
	if !hostAddr(c.ip) || !unicastMAC(c.mac) {
		return ignored
	}
	if c.ip.Is4() {
		c.role = RoleUnknown
	}
	e := t.entries[c.ip]
	if e == nil {
		t.insertLocked(now, c)
		return bound
	}
	sameMAC, sameOwner := e.MAC == c.mac, e.Owner == c.owner
	switch {
	case sameMAC && sameOwner:
		if now.After(e.Seen) { // two callers' clocks may be a hair apart
			e.Seen = now
		}
		t.lru[lruIndex(e.Local)].MoveToBack(e.elem)
		if c.role != RoleUnknown && c.role != e.Role {
			e.Role = c.role
			t.changedLocked(e)
		}
		return refreshed
	// Another MAC needs an announcement, or the owner's own advert; an
	// advert never moves a host from another owner.
	case !sameMAC && !c.override && !(c.advert && sameOwner), sameMAC && c.advert:
		t.stats.Conflicts++
		if now.Sub(e.warned) >= conflictLogEvery {
			e.warned = now
			t.log.Warn("arp: address conflict, keeping the old binding", "ip", e.IP,
				"mac", mac(e.MAC), "owner", ownerName(e.Owner), "claimed_mac", mac(c.mac),
				"claimed_owner", ownerName(c.owner), "via", c.via)
		}
		return conflicted
	}
	t.stats.Moves++
	t.log.Info("arp: host moved", "ip", e.IP, "mac", mac(e.MAC), "owner", ownerName(e.Owner),
		"new_mac", mac(c.mac), "new_owner", ownerName(c.owner), "via", c.via)
	t.changedLocked(e) // if it was local: now gone from here
	if !sameMAC || c.role != RoleUnknown {
		e.Role = c.role // another host, or news about this one
	}
	t.lru[lruIndex(e.Local)].Remove(e.elem)
	e.MAC, e.Owner, e.Local, e.Via, e.Learned, e.Seen = c.mac, c.owner, c.owner.IsZero(), c.via, now, now
	e.elem = t.lru[lruIndex(e.Local)].PushBack(e)
	t.changedLocked(e)
	return bound
}

func (t *Table) insertLocked(now time.Time, c claim) {
	local := c.owner.IsZero()
	if local && t.lru[0].Len() >= MaxHosts {
		t.evictLocked(&t.lru[0])
	}
	if len(t.entries) >= t.max {
		l0, l1 := t.lru[0].Front(), t.lru[1].Front()
		if l1 == nil || l0 != nil && l0.Value.(*entry).Seen.Before(l1.Value.(*entry).Seen) {
			t.evictLocked(&t.lru[0])
		} else {
			t.evictLocked(&t.lru[1])
		}
	}
	e := &entry{Entry: Entry{IP: c.ip, MAC: c.mac, Owner: c.owner, Local: local, Role: c.role,
		Via: c.via, Learned: now, Seen: now}}
	e.elem = t.lru[lruIndex(local)].PushBack(e)
	t.entries[c.ip] = e
	t.changedLocked(e)
}

func (t *Table) evictLocked(l *list.List) {
	if f := l.Front(); f != nil {
		t.stats.Evicted++
		t.removeLocked(f.Value.(*entry))
	}
}

func (t *Table) removeLocked(e *entry) {
	delete(t.entries, e.IP)
	t.lru[lruIndex(e.Local)].Remove(e.elem)
	t.changedLocked(e)
}

// changedLocked notes that a local binding of e.IP changed, for TakeAdvert.
func (t *Table) changedLocked(e *entry) {
	if e.Local {
		t.dirty[e.IP] = struct{}{}
	}
}

func (t *Table) fresh(now time.Time, e *entry) bool { return now.Sub(e.Seen) < t.age }

func lruIndex(local bool) int {
	if local {
		return 0
	}
	return 1
}

// Expire drops entries not seen for Config.Age; local ones go into the
// next TakeAdvert as Gone. It walks from the least recently seen and stops
// at the first fresh entry, so it costs what it drops. (Callers refresh
// from two goroutines, so the order may be off by a scheduling delay; an
// entry that sorts late goes one Expire later.)
func (t *Table) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.lru {
		for f := t.lru[i].Front(); f != nil && !t.fresh(now, f.Value.(*entry)); f = t.lru[i].Front() {
			t.removeLocked(f.Value.(*entry))
		}
	}
}

// RemoveNode forgets every host owned by from: its link is gone, so
// frames for them could not be delivered anyway.
func (t *Table) RemoveNode(from nodeid.ID) {
	if from.IsZero() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeOwnedLocked(from, nil)
}

// removeOwnedLocked removes the entries owned by from whose address keep
// does not hold.
func (t *Table) removeOwnedLocked(from nodeid.ID, keep map[netip.Addr]bool) {
	for f := t.lru[1].Front(); f != nil; {
		e, next := f.Value.(*entry), f.Next()
		if e.Owner == from && !keep[e.IP] {
			t.removeLocked(e)
		}
		f = next
	}
}

// Entries returns the entries fresh at now, sorted by IP.
func (t *Table) Entries(now time.Time) []Entry {
	t.mu.Lock()
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		if t.fresh(now, e) {
			out = append(out, e.Entry)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int { return a.IP.Compare(b.IP) })
	return out
}

// Stats returns the counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

func mac(m [6]byte) string { return net.HardwareAddr(m[:]).String() }
