package igmp

import (
	"net/netip"
	"slices"
	"strings"
)

// Mode is a filter mode (RFC 3376 §3.1, RFC 3810 §4.1).
type Mode uint8

const (
	// Include: traffic from the listed sources only. INCLUDE{} means
	// there is no local member at all.
	Include Mode = iota
	// Exclude: traffic from every source except the listed ones.
	// EXCLUDE{} is a plain (any-source) join.
	Exclude
)

func (m Mode) String() string {
	if m == Exclude {
		return "EXCLUDE"
	}
	return "INCLUDE"
}

// Filter is what the local link wants of one group: a mode and a sorted
// list of unique sources. The zero Filter is INCLUDE{}: no member.
type Filter struct {
	Mode    Mode
	Sources []netip.Addr // sorted, unique
}

// Allows reports whether traffic from src to the group should reach the link.
func (f Filter) Allows(src netip.Addr) bool {
	_, found := slices.BinarySearchFunc(f.Sources, src, netip.Addr.Compare)
	return found == (f.Mode == Include)
}

// Equal reports whether f and o are the same filter.
func (f Filter) Equal(o Filter) bool {
	return f.Mode == o.Mode && slices.Equal(f.Sources, o.Sources)
}

// Member reports whether any traffic at all is wanted (not INCLUDE{}).
func (f Filter) Member() bool { return f.Mode == Exclude || len(f.Sources) > 0 }

func (f Filter) String() string {
	var b strings.Builder
	b.WriteString(f.Mode.String())
	b.WriteByte('{')
	for i, s := range f.Sources {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.String())
	}
	b.WriteByte('}')
	return b.String()
}

// sortedSet returns a sorted copy of a without duplicates; record source
// lists come from the wire in any order and may repeat.
func sortedSet(a []netip.Addr) []netip.Addr {
	if len(a) == 0 {
		return nil
	}
	s := slices.Clone(a)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}
