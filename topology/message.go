package topology

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// Kind says what a membership Message carries.
type Kind uint8

const (
	// KindFull is the sender's whole membership at Seq. Sent on a new link,
	// every refresh interval, and in answer to KindSync.
	KindFull Kind = iota + 1
	// KindDelta is one change: the groups whose filter changed, at Seq =
	// the previous Seq + 1. A group with INCLUDE{} was left.
	KindDelta
	// KindSync asks the receiver of this message for a KindFull, after a
	// gap or an unknown epoch. It carries no groups and no refresh; Epoch
	// and Seq are what the asker holds, for logs only.
	KindSync
	// KindPart is one part of a full state too big for one message
	// (Advertiser.FullParts): Part of Parts, at Epoch and Seq. The
	// receiver takes the state once it holds every part (Table.Apply).
	KindPart
)

func (k Kind) String() string {
	switch k {
	case KindFull:
		return "full"
	case KindDelta:
		return "delta"
	case KindSync:
		return "sync"
	case KindPart:
		return "part"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Message is one membership message between the two nodes of a link.
type Message struct {
	Kind  Kind
	Epoch uint64 // the sender's Advertiser epoch: random per process
	// Seq: for KindFull the sequence number the state is at; for KindDelta
	// the number of this change, the previous one + 1 (the first is 1).
	Seq uint64
	// Groups: for KindFull every group with its filter (none INCLUDE{});
	// for KindDelta the changed groups (INCLUDE{} = left). Sorted by
	// address, each group once.
	Groups []Group
	// Refresh is the sender's refresh interval, whole seconds from 1 s to
	// MaxRefresh; the receiver forgets the sender after 3×Refresh of
	// silence. Zero in KindSync.
	Refresh time.Duration
	// Part and Parts, in KindPart only: this is part Part (from 0) of a
	// full state sent in Parts messages (2..MaxParts), each holding the
	// next groups in address order.
	Part, Parts int
}

// Group is one group of a Message and the sender's filter for it.
type Group struct {
	Addr   netip.Addr
	Filter filter.Filter
}

// Wire layout of a Message, all integers big-endian, 22-byte header:
//
//	 0  version   1  wireVersion (1)
//	 1  kind      1  1 full, 2 delta, 3 sync, 4 part
//	 2  epoch     8
//	10  seq       8
//	18  refresh   2  seconds; 1..65535 in full, delta and part, 0 in sync
//	20  ngroups   2  0..MaxGroups; ≥1 in delta and part, 0 in sync
//	22  groups    ngroups records, strictly ascending by address
//
// A part has 4 more header bytes before its groups:
//
//	22  part      2  0..parts-1
//	24  parts     2  2..MaxParts
//	26  groups
//
// Group record, 7 bytes for an IPv4 any-source join (19 for IPv6):
//
//	0  flags     1  bit 0: IPv6 (addresses are 16 bytes, else 4);
//	                bit 1: EXCLUDE (else INCLUDE); other bits 0
//	1  group     4|16  a multicast address; IPv6 never 4-in-6
//	.  nsrc      2  0..MaxSources; ≥1 when INCLUDE in a full
//	.  sources   nsrc × (4|16)  unicast, strictly ascending
//
// Every field has one valid encoding, so decoding and re-encoding gives the
// same bytes, and a strict decoder is also a canonical one. Fixed-width
// integers rather than varints keep it that way without extra checks.
const (
	wireVersion = 1
	headerLen   = 22
	partLen     = 4 // part and parts, in KindPart
	flagIPv6    = 1 << 0
	flagExclude = 1 << 1
	knownFlags  = flagIPv6 | flagExclude
	// minGroupLen is the smallest group record: flags, IPv4 group, nsrc.
	// The decoder checks counts against it before allocating.
	minGroupLen = 1 + 4 + 2

	// MaxGroups bounds the groups of one message. A state with more
	// goes in parts (KindPart).
	MaxGroups = 1024
	// MaxNodeGroups bounds one node's groups, and MaxNodeEntries its
	// groups and their sources together (each group one, each source
	// one): what a node advertises (Advertiser.Set refuses or widens
	// beyond) and what a Table holds of one node (refused beyond). Far
	// above what hosts on one TAP join, bounded so that one member cannot
	// fill every node's memory.
	MaxNodeGroups  = 16384
	MaxNodeEntries = 65536
	// MaxParts bounds the parts of one full state: enough for
	// MaxNodeGroups groups one to a part.
	MaxParts = MaxNodeGroups
	// MaxSources bounds one filter's source list. IGMPv3 can carry more in
	// theory; a local filter over the limit is widened (see Advertiser.Set).
	MaxSources = 256
	// MaxRefresh is the longest refresh interval the 16-bit field carries.
	MaxRefresh = 65535 * time.Second
)

// Size returns the length of m's encoding (valid or not).
func (m *Message) Size() int {
	n := headerLen
	if m.Kind == KindPart {
		n += partLen
	}
	for _, g := range m.Groups {
		al := g.Addr.BitLen() / 8
		n += 1 + al + 2 + al*len(g.Filter.Sources)
	}
	return n
}

// MarshalBinary encodes m. It refuses (ErrMalformed, ErrLimit) a message
// that UnmarshalBinary would refuse, so nothing this side sends can be
// dropped by a strict peer.
func (m *Message) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, headerLen, m.Size())
	b[0], b[1] = wireVersion, byte(m.Kind)
	binary.BigEndian.PutUint64(b[2:], m.Epoch)
	binary.BigEndian.PutUint64(b[10:], m.Seq)
	binary.BigEndian.PutUint16(b[18:], uint16(m.Refresh/time.Second))
	binary.BigEndian.PutUint16(b[20:], uint16(len(m.Groups)))
	if m.Kind == KindPart {
		b = binary.BigEndian.AppendUint16(b, uint16(m.Part))
		b = binary.BigEndian.AppendUint16(b, uint16(m.Parts))
	}
	for _, g := range m.Groups {
		var flags byte
		if g.Addr.Is6() {
			flags |= flagIPv6
		}
		if g.Filter.Mode == filter.Exclude {
			flags |= flagExclude
		}
		b = append(b, flags)
		b = appendAddr(b, g.Addr)
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Filter.Sources)))
		for _, s := range g.Filter.Sources {
			b = appendAddr(b, s)
		}
	}
	return b, nil
}

// appendAddr appends a's 4 or 16 bytes; a is valid and has no zone.
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		a4 := a.As4()
		return append(b, a4[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

// validate checks every rule of the layout on a Message built in memory.
// The decoder enforces the same rules as it reads, and Table.Apply calls
// this on messages it did not decode itself.
func (m *Message) validate() error {
	if m.Kind < KindFull || m.Kind > KindPart {
		return fmt.Errorf("%w: %v", ErrMalformed, m.Kind)
	}
	if err := checkPart(m.Kind, m.Part, m.Parts); err != nil {
		return err
	}
	if err := checkRefresh(m.Kind, m.Refresh); err != nil {
		return err
	}
	if err := checkCount(m.Kind, m.Seq, len(m.Groups)); err != nil {
		return err
	}
	for i, g := range m.Groups {
		if !validGroup(g.Addr) {
			return fmt.Errorf("%w: group %d: %v is not a multicast group", ErrMalformed, i, g.Addr)
		}
		if i > 0 && m.Groups[i-1].Addr.Compare(g.Addr) >= 0 {
			return fmt.Errorf("%w: group %d: %v out of order", ErrMalformed, i, g.Addr)
		}
		if err := checkFilter(m.Kind, g.Filter, len(g.Filter.Sources)); err != nil {
			return fmt.Errorf("group %d (%v): %w", i, g.Addr, err)
		}
		for j, s := range g.Filter.Sources {
			if err := checkSource(g.Addr, g.Filter.Sources[:j], s); err != nil {
				return fmt.Errorf("group %d (%v): source %d: %w", i, g.Addr, j, err)
			}
		}
	}
	return nil
}

// checkPart checks a part's place; other kinds have none.
func checkPart(k Kind, part, parts int) error {
	switch {
	case k != KindPart && (part != 0 || parts != 0):
		return fmt.Errorf("%w: %v with part %d of %d", ErrMalformed, k, part, parts)
	case k != KindPart:
		return nil
	case parts < 2 || parts > MaxParts:
		return fmt.Errorf("%w: %d parts, want 2..%d", ErrLimit, parts, MaxParts)
	case part < 0 || part >= parts:
		return fmt.Errorf("%w: part %d of %d", ErrMalformed, part, parts)
	}
	return nil
}

func checkRefresh(k Kind, d time.Duration) error {
	switch {
	case k == KindSync && d != 0:
		return fmt.Errorf("%w: sync with refresh %v", ErrMalformed, d)
	case k != KindSync && (d < time.Second || d > MaxRefresh):
		return fmt.Errorf("%w: refresh %v outside 1s..%v", ErrLimit, d, MaxRefresh)
	case d%time.Second != 0:
		return fmt.Errorf("%w: refresh %v is not whole seconds", ErrMalformed, d)
	}
	return nil
}

func checkCount(k Kind, seq uint64, n int) error {
	switch {
	case n > MaxGroups:
		return fmt.Errorf("%w: %d groups, at most %d", ErrLimit, n, MaxGroups)
	case k == KindSync && n != 0:
		return fmt.Errorf("%w: sync with %d groups", ErrMalformed, n)
	case (k == KindDelta || k == KindPart) && n == 0:
		return fmt.Errorf("%w: %v without groups", ErrMalformed, k)
	case k == KindDelta && seq == 0:
		return fmt.Errorf("%w: delta with seq 0", ErrMalformed)
	}
	return nil
}

// checkFilter checks a filter's mode and size; n is its number of sources.
func checkFilter(k Kind, f filter.Filter, n int) error {
	switch {
	case f.Mode != filter.Include && f.Mode != filter.Exclude:
		return fmt.Errorf("%w: mode %d", ErrMalformed, f.Mode)
	case n > MaxSources:
		return fmt.Errorf("%w: %d sources, at most %d", ErrLimit, n, MaxSources)
	case (k == KindFull || k == KindPart) && f.Mode == filter.Include && n == 0:
		// A full lists memberships; a left group is simply absent.
		return fmt.Errorf("%w: INCLUDE{} in a full state", ErrMalformed)
	}
	return nil
}

// checkSource checks source s of group g given the sources before it.
func checkSource(g netip.Addr, before []netip.Addr, s netip.Addr) error {
	if !validSource(g, s) {
		return fmt.Errorf("%w: %v is not a unicast source of %v's family", ErrMalformed, s, g)
	}
	if n := len(before); n > 0 && before[n-1].Compare(s) >= 0 {
		return fmt.Errorf("%w: %v out of order", ErrMalformed, s)
	}
	return nil
}
