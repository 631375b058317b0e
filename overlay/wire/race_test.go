//go:build race

package wire

// raceEnabled: sync.Pool deliberately drops items under the race detector,
// so allocation counts are meaningless there.
const raceEnabled = true
