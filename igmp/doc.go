// Package igmp is the multicast router side of IGMPv1/v2/v3 (RFC 1112,
// RFC 2236, RFC 3376) and MLDv1/v2 (RFC 2710, RFC 3810) for one link: the
// TAP of an ipopd node, on which the node is the querier.
//
// A Router is pure protocol logic. It never reads a clock, opens a socket
// or starts a goroutine; the node drives it from its one serial loop:
//
//	TAP read ─► tap.Classify == IGMP/MLD ─► Router.Input(now, frame)
//	timer at Router.Next() ───────────────► Router.Advance(now)
//	after either:  Router.TakeOutput() ─► TAP write (queries)
//	               Router.TakeEvents() ─► topology (membership changes)
//
// Everything is sequential: Input first fires the timers that are already
// due, then handles the frame; each call ends by turning the groups it
// touched into events. A Router is not safe for concurrent use.
//
// Membership is kept per group as RFC 3376 §6 and RFC 3810 §7 describe the
// router state (filter mode, group timer, source records with timers) and
// reported as a Filter: INCLUDE{S...} forwards only the listed sources,
// EXCLUDE{S...} everything but them, INCLUDE{} means no member. Older hosts
// are handled by the compatibility rules of RFC 3376 §7.3.2 and RFC 3810
// §8.3.2. Events carry the merged state of all hosts on the link, only
// when it changes.
//
// Bad input never panics: Input returns an error wrapping one of the ErrX
// values and leaves the state as it was; Stats counts both.
package igmp
