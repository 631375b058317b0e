package igmp

import (
	"net/netip"
	"slices"
)

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
