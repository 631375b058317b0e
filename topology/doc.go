// Package topology decides where overlay traffic goes: which nodes want a
// multicast frame, which links to keep, and which link takes a packet
// toward a node it has none to. It is pure logic: no sockets, goroutines,
// OS calls or clocks (callers pass now), and only the standard library,
// so every rule is testable on a fake clock. Nothing here is safe for
// concurrent use except View, Routes, OnDemand.Add and the package-level
// functions: the node's control loop owns Advertiser, Table, Ring and
// OnDemand, and the data path reads View and Routes snapshots.
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
//
// # Ring
//
// Instead of a full mesh, nodes form a ring ordered by node ID (the
// 256-bit ID read as a number, wrapping around). Each node links to its
// topology.successors next nodes clockwise and to topology.chords
// long-distance nodes picked as in Symphony (harmonic distances, a seeded
// draw per node; ring_chords.go says why the choice is stable). Links go
// both ways, so a node is also linked to its predecessors and to the
// nodes whose chords chose it.
//
// Ring is one node's view. It knows its links, the links each linked node
// announces (Neighbors, one hop), and the rendezvous's presence list
// (Learn, on leases). Ring.Desired is a function of that knowledge, and
// Ring.Tick turns it into actions: links to set up, links neither end
// wants any more, and when to announce. The protocol, in ring_tick.go, is
// a link-state exchange of the two-hop neighbourhood: a node announces its
// links (each marked Wanted or not) whenever they change and every
// Refresh. A joining node learns its place by linking to whoever it
// knows and following their announcements; the nodes around a join, a
// leave or a crash learn of each other the same way. A link that fails
// holds its node down for HoldDown, so that peers that have not noticed a
// crash yet cannot bring it back.
//
// A packet for a node without a direct link is routed greedily: each hop
// goes to a linked node strictly nearer the destination on the ring, the
// one whose own links reach nearest (a lookahead over what the peers
// announced; Routes, route_table.go). The distance strictly falls at every
// hop, so routes cannot loop whatever the links or the announcements say,
// and with the successor links in place they always arrive (route.go). A
// routed packet carries a Route header (source, destination, TTL from
// HopLimit; route_wire.go). Fanout broadcasts along the same links, each
// node once, n-1 messages: one way for membership deltas to reach every
// node.
//
// OnDemand counts the bytes the data path sends toward each node and asks
// for a direct link once the rate stays above topology.on_demand.threshold
// for a few seconds; the link goes after topology.on_demand.idle below it,
// at most topology.on_demand.max_links of them (ondemand.go).
//
// The node integration follows these rules:
//
//  1. Feed Ring: LinkUp/LinkDown/LinkFailed from the link manager, Learn
//     from each presence list (and again every Refresh), Forget when the
//     rendezvous says a node left, Apply for each Neighbors received.
//  2. After each batch of events and every second: OnDemand.Tick with
//     the ring's Desired links, Ring.SetOnDemand(OnDemand.Links()), then
//     Ring.Tick: set up each Connect (signaling routed through the
//     overlay once the node has links, else through the rendezvous),
//     close each Close with a goodbye, and on Announce send
//     Ring.Neighbors on every link. A node that leaves says goodbye on
//     every link; its peers call LinkFailed.
//  3. Publish Ring.Routes to the data path whenever it changes (like
//     View). There, a destination with a link gets the frame directly;
//     otherwise Routes.NextHop picks the link and the frame goes out with
//     a Route header. A received routed packet goes to Routes.Forward
//     (unicast) or Routes.Fanout (broadcast). Count every frame sent
//     toward a node with OnDemand.Add.
//
// TestSimulate runs these rules for 100 and 500 nodes in an in-process
// model and prints convergence time, hops and message counts.
package topology
