package topology

import (
	"net/netip"
	"slices"
	"strings"
)

// Mode is the filter mode of a source-specific membership (RFC 3376 §3,
// RFC 3810 §4.2): which sources the listed ones are.
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

// Filter is a node's membership in one group. Sources are sorted
// (netip.Addr.Compare) and unique, of the group's address family, without
// zones; Allows relies on that. Filters that come out of this package (from
// Advertiser, decoding, View) always are; Advertiser.Set accepts any order.
//
// Advertiser hands out copies. A View's filters (View.Nodes) share their
// Sources with the snapshot, which other goroutines read: never modify them.
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

// clone returns f with its own copy of Sources (nil when empty, so that
// filters compare and encode the same however they were built).
func (f Filter) clone() Filter {
	if len(f.Sources) == 0 {
		return Filter{Mode: f.Mode}
	}
	return Filter{Mode: f.Mode, Sources: slices.Clone(f.Sources)}
}

// validGroup reports whether g may name a group on the wire and in tables:
// a multicast address in its canonical form (IPv4 as 4 bytes, no zone).
// netip's IsMulticast looks through 4-in-6, so that is checked apart.
func validGroup(g netip.Addr) bool {
	return g.IsValid() && g.IsMulticast() && !g.Is4In6() && g.Zone() == ""
}

// validSource reports whether s may be a source of group g: a unicast
// address of g's family in canonical form. A multicast or unspecified
// "source" can never appear in a frame's source field, so a list holding
// one is corrupt, not merely odd.
func validSource(g, s netip.Addr) bool {
	return s.IsValid() && s.BitLen() == g.BitLen() && !s.Is4In6() && s.Zone() == "" &&
		!s.IsMulticast() && !s.IsUnspecified()
}

// canonical brings an address the caller got from a parser into the form
// tables use: IPv4 as 4 bytes, no zone (groups are matched by value, and a
// zone pointer would make equal groups differ).
func canonical(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// normalize turns a locally learnt filter into one that can be advertised:
// sources canonical, invalid ones dropped, sorted and unique, at most
// MaxSources. Over the limit it errs towards delivering more, never less,
// because hosts filter sources themselves (RFC 3376 §3.2): INCLUDE with too
// many sources becomes EXCLUDE{} (any source), EXCLUDE keeps only the first
// MaxSources exclusions. ok is false for an unknown mode.
func normalize(group netip.Addr, f Filter) (_ Filter, ok bool) {
	if f.Mode != Include && f.Mode != Exclude {
		return Filter{}, false
	}
	var srcs []netip.Addr
	for _, s := range f.Sources {
		if s = canonical(s); validSource(group, s) {
			srcs = append(srcs, s)
		}
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	srcs = slices.Compact(srcs)
	if len(srcs) > MaxSources {
		if f.Mode == Include {
			return Filter{Mode: Exclude}, true
		}
		srcs = srcs[:MaxSources:MaxSources]
	}
	return Filter{Mode: f.Mode, Sources: srcs}, true
}
