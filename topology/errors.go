package topology

import "errors"

// Sentinels of membership message decoding and encoding, wrapped with
// context ("group 3: source 7: ..."). A bad message is dropped and counted
// by the caller; it says nothing about the link, which stays up.
var (
	// ErrVersion: the first byte is not a membership format this code
	// knows. A newer peer's message is refused, never misread.
	ErrVersion = errors.New("topology: unknown membership message version")
	// ErrMalformed: the bytes do not follow the layout: truncated, trailing
	// bytes, unknown kind or flag bits, addresses that are not multicast
	// groups or unicast sources, a family mix, or lists out of order.
	ErrMalformed = errors.New("topology: malformed membership message")
	// ErrLimit: a count exceeds MaxGroups or MaxSources, or a duration is
	// outside what the wire can carry. Checked before anything is
	// allocated, so a hostile count costs nothing.
	ErrLimit = errors.New("topology: membership message over limits")
)
