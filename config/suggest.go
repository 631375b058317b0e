package config

import "strings"

// nearest returns the candidate closest to name by edit distance, or "" if
// none is close enough to be a plausible typo. Ties go to the earlier
// candidate, so suggestions are deterministic.
//
// The allowance grows with the last segment of name ("mdoe" in "tap.mdoe",
// "MDOE" in "IPOPD_TAP_MDOE"): comparing whole dotted paths would otherwise
// let a shared prefix make any short key look close to any other.
func nearest(name string, candidates []string) string {
	last := name[strings.LastIndexAny(name, "._")+1:]
	limit := 1 + len(last)/5
	if limit > 3 {
		limit = 3
	}
	best, bestD := "", limit+1
	lower := strings.ToLower(name) // "TAP" is a typo of "tap" too
	for _, c := range candidates {
		if d := distance(lower, strings.ToLower(c), bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance: insertions, deletions,
// substitutions and swaps of adjacent bytes each cost 1, so "mdoe" is one
// step from "mode". It returns early with a value >= limit once the distance
// is known to reach limit, which keeps fuzzed megabyte keys cheap.
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	// Three rows: the one before last (for swaps), last, and current.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, prev2[j-2]+1)
			}
			cur[j] = d
			rowMin = min(rowMin, d)
		}
		if rowMin >= limit {
			return limit
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
