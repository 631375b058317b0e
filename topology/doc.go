// Package topology decides where overlay traffic goes: which nodes want a
// multicast frame, and (in the ring part) which links to keep. It is pure
// logic: no sockets, goroutines, OS calls or clocks (callers pass now), and
// only the standard library, so every rule is testable on a fake clock.
// Nothing here is safe for concurrent use except View: the node's control
// loop owns Advertiser and Table, and the data path reads Views.
//
// # Multicast membership
//
// Each node is the IGMP/MLD querier of its TAP and so knows its local
// membership: per group, a source filter, INCLUDE{sources} or
// EXCLUDE{sources} (RFC 3376, RFC 3810), with INCLUDE{} meaning nobody.
// Every node tells every node it has a link with, and each node's Table
// converges to (group, filter) → subscribed nodes. A multicast frame (G, S)
// read from the TAP goes to exactly View.Targets(G, S): the nodes whose
// filter for G admits S, each once.
//
// # Protocol
//
// The node integration follows these rules; Advertiser and Table implement
// their halves.
//
//  1. New link: each side sends Advertiser.Full to the other. A full state
//     (KindFull) carries every group, the epoch and the Seq it is at.
//  2. Change: when IGMP/MLD changes a local filter, Advertiser.Set returns a
//     delta (KindDelta, Seq = previous + 1, the changed group; INCLUDE{}
//     means left). Send it to every linked node.
//  3. Refresh: every Advertiser.Refresh interval send Full on every link.
//     It heals whatever was lost and proves the node alive.
//  4. Receive: pass every KindFull and KindDelta to Table.Apply with the
//     sending node's ID. When it returns changed, publish Table.View to the
//     data path. When it returns needSync, send Table.Sync(from) back:
//     a delta skipped a Seq (one was lost) or came under an epoch not held
//     (the sender restarted, or this side never got its full state).
//     Apply already rate-limits needSync to once per SyncRetry per node.
//  5. Sync: answer a received KindSync with Advertiser.Full on that link.
//  6. Expiry: call Table.Expire periodically (e.g. each refresh tick); it
//     drops nodes not heard from for 3× the refresh interval they announce,
//     so two lost refreshes in a row are tolerated. When a link is torn
//     down for good, or a node leaves, call Table.Remove at once.
//
// Deltas are applied only in order: a remote node's state in the Table is
// always exactly one the sender had, at some Seq. After a gap it stays at
// the last good Seq until the full state arrives (one round trip). Stale
// messages, reordered behind newer ones, are ignored.
//
// The epoch is random per process: a restarted node's Seq starts again at
// 0, and a different epoch tells receivers to take its next full state
// instead of comparing sequence numbers across lives.
//
// Messages travel as control messages on the link; the layout is
// documented beside its constants in message.go. Decoding is strict and
// canonical, bounded by MaxGroups and MaxSources, and costs memory in
// proportion to the bytes received. A full state can exceed one datagram
// (about 190 IPv4 or 70 IPv6 any-source groups per 1,350 bytes; see
// Message.Size); carrying it is the link's job.
package topology
