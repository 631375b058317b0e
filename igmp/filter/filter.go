// Package filter is the source filter of a multicast membership (RFC 3376
// §3, RFC 3810 §4.2): what the querier learns from IGMPv3/MLDv2 hosts, what
// nodes advertise to each other (topology) and what the data plane checks
// per frame. It is one small value type that every multicast package
// shares, and imports nothing of ipopd.
package filter

import (
	"net/netip"
	"slices"
	"strings"
)

// Mode says which sources the listed ones are.
type Mode uint8

const (
	// Include admits only the listed sources. INCLUDE{} admits nobody: it
	// is how a leave, or the absence of a membership, is written.
	Include Mode = iota
	// Exclude admits every source but the listed ones. EXCLUDE{} is an
	// any-source join (IGMPv2, MLDv1, or a v3 join without sources).
	Exclude
)

func (m Mode) String() string {
	switch m {
	case Include:
		return "INCLUDE"
	case Exclude:
		return "EXCLUDE"
	}
	return "MODE?"
}

// Filter is a membership in one group. Sources are sorted
// (netip.Addr.Compare) and unique, of the group's address family, without
// zones; Allows relies on that. The zero Filter is INCLUDE{}: no member.
//
// Filters handed out by the querier and the membership table may share
// Sources with state other goroutines read: never modify them; Clone first.
type Filter struct {
	Mode    Mode
	Sources []netip.Addr
}

// Allows reports whether the filter admits traffic from src. src must be
// in the form frames give it: 4 bytes for IPv4, no zone.
func (f Filter) Allows(src netip.Addr) bool {
	listed := false
	if len(f.Sources) <= linearMax {
		// Lists are mostly one or a few sources (an SSM channel), where a
		// scan of == beats the three-way compares of a binary search.
		listed = slices.Contains(f.Sources, src)
	} else {
		_, listed = slices.BinarySearchFunc(f.Sources, src, netip.Addr.Compare)
	}
	switch f.Mode {
	case Include:
		return listed
	case Exclude:
		return !listed
	}
	return false
}

// linearMax is the longest source list Allows scans rather than bisects.
const linearMax = 8

// Empty reports whether f is INCLUDE{}: no membership at all.
func (f Filter) Empty() bool { return f.Mode == Include && len(f.Sources) == 0 }

// Equal reports whether f and g have the same mode and sources.
func (f Filter) Equal(g Filter) bool {
	return f.Mode == g.Mode && slices.Equal(f.Sources, g.Sources)
}

// Clone returns f with its own copy of Sources (nil when empty, so that
// filters compare and encode the same however they were built).
func (f Filter) Clone() Filter {
	if len(f.Sources) == 0 {
		return Filter{Mode: f.Mode}
	}
	return Filter{Mode: f.Mode, Sources: slices.Clone(f.Sources)}
}

// String renders RFC 3376 notation: "INCLUDE{192.0.2.1,192.0.2.7}".
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
