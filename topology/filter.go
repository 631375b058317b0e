package topology

import (
	"net/netip"
	"slices"

	"github.com/ipopd/ipopd/igmp/filter"
)

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
func normalize(group netip.Addr, f filter.Filter) (_ filter.Filter, ok bool) {
	if f.Mode != filter.Include && f.Mode != filter.Exclude {
		return filter.Filter{}, false
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
		if f.Mode == filter.Include {
			return filter.Filter{Mode: filter.Exclude}, true
		}
		srcs = srcs[:MaxSources:MaxSources]
	}
	return filter.Filter{Mode: f.Mode, Sources: srcs}, true
}

// unionFilter is the filter admitting what either of two normalized
// filters admits (RFC 3376 §6.4's merging, as a router does for its
// hosts): INCLUDE(A)+INCLUDE(B) = INCLUDE(A∪B), EXCLUDE(X)+INCLUDE(A) =
// EXCLUDE(X−A), EXCLUDE(X)+EXCLUDE(Y) = EXCLUDE(X∩Y). An INCLUDE over
// MaxSources becomes EXCLUDE{}, as normalize widens.
func unionFilter(a, b filter.Filter) filter.Filter {
	if a.Mode == filter.Include && b.Mode == filter.Exclude {
		a, b = b, a
	}
	var srcs []netip.Addr
	switch {
	case a.Mode == filter.Include: // both INCLUDE
		srcs = slices.Concat(a.Sources, b.Sources)
		slices.SortFunc(srcs, netip.Addr.Compare)
		srcs = slices.Compact(srcs)
		if len(srcs) > MaxSources {
			return filter.Filter{Mode: filter.Exclude}
		}
		return filter.Filter{Mode: filter.Include, Sources: srcs}
	case b.Mode == filter.Include: // EXCLUDE(a) − INCLUDE(b)
		for _, s := range a.Sources {
			if _, in := slices.BinarySearchFunc(b.Sources, s, netip.Addr.Compare); !in {
				srcs = append(srcs, s)
			}
		}
	default: // EXCLUDE ∩ EXCLUDE
		for _, s := range a.Sources {
			if _, in := slices.BinarySearchFunc(b.Sources, s, netip.Addr.Compare); in {
				srcs = append(srcs, s)
			}
		}
	}
	return filter.Filter{Mode: filter.Exclude, Sources: srcs}
}
