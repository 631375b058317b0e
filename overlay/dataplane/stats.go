package dataplane

import (
	"log/slog"
	"sync/atomic"

	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/tap"
)

// counters are node-wide drops by reason and routed traffic; hot, so
// atomics bumped by the readers.
type counters struct {
	unknownSource, authFailed, replayed, notData, noPath, badLength, noMember atomic.Uint64
	badRoute, noRoute, expired, badControl, floodDup, badOrigin               atomic.Uint64
	unknownOrigin, spoofedSource, spoofedARP, spoofedND, spoofedMAC           atomic.Uint64
	rateLimited, noCert, e2eFailed, unsealed, earlyDropped, helloLimited      atomic.Uint64
	routedSent, routedForwarded, routedDelivered, flooded, roamed             atomic.Uint64
	relayedBroadcasts, badProbe, probeLimited, suspected                      atomic.Uint64
	lossy, lossyKept                                                          atomic.Uint64
	treeSent, treeForwarded, treeStray, treeNoTree, badTree                   atomic.Uint64
}

// limits log each bound reached, beside its counter (limitlog: the first
// at once, then one line per interval).
type limits struct {
	macFull, rateLimited, held, outHeld, early, hello, roam, lossy *limitlog.Logger
}

func (l *limits) init(log *slog.Logger) {
	l.macFull = limitlog.New(log, slog.LevelWarn, "MAC table bound reached: new MACs not learned (mac_table_full)", 0)
	l.rateLimited = limitlog.New(log, slog.LevelWarn, "a link sends broadcasts over the rate limit: dropped (broadcast_rate_limited)", 0)
	l.held = limitlog.New(log, slog.LevelWarn, "routed packets from nodes whose certificate is unknown: the waiting room is full, dropped (unknown_origin)", 0)
	l.outHeld = limitlog.New(log, slog.LevelWarn, "frames to nodes whose certificate is unknown: the waiting room is full, dropped (no_certificate)", 0)
	l.hello = limitlog.New(log, slog.LevelWarn, "certificates asked of too many nodes at once: not asked (hello_rate_limited)", 0)
	l.roam = limitlog.New(log, slog.LevelInfo, "packets from unknown addresses: over the rate of roaming trials, not tried (unknown_source)", 0)
	l.lossy = limitlog.New(log, slog.LevelInfo, "a lossy link is not routed around: half of the links are lossy already, the loss is likely this node's own (lossy_kept)", 0)
	l.early = limitlog.New(log, slog.LevelInfo, "packets a peer sent before the link's keys were set: over the bound, dropped (early_dropped)", 0)
}

// Drops returns the drop counters by reason, as `ipopctl peers` shows them.
func (p *Plane) Drops() map[string]uint64 {
	c := &p.counters
	return map[string]uint64{
		"unknown_source": c.unknownSource.Load(), "auth_failed": c.authFailed.Load(), "replayed": c.replayed.Load(),
		"not_data": c.notData.Load(), "no_path": c.noPath.Load(), "bad_length": c.badLength.Load(),
		"no_local_member": c.noMember.Load(), "bad_route": c.badRoute.Load(), "no_route": c.noRoute.Load(),
		"ttl_expired": c.expired.Load(), "bad_control": c.badControl.Load(), "flood_duplicate": c.floodDup.Load(),
		"bad_origin": c.badOrigin.Load(), "unknown_origin": c.unknownOrigin.Load(),
		"spoofed_source": c.spoofedSource.Load(), "spoofed_arp": c.spoofedARP.Load(), "spoofed_nd": c.spoofedND.Load(),
		"spoofed_mac": c.spoofedMAC.Load(), "mac_table_full": p.macs.full.Load(), "broadcast_rate_limited": c.rateLimited.Load(),
		"no_certificate": c.noCert.Load(), "e2e_failed": c.e2eFailed.Load(), "unsealed_unicast": c.unsealed.Load(),
		"early_dropped": c.earlyDropped.Load(), "hello_rate_limited": c.helloLimited.Load(),
		"bad_probe": c.badProbe.Load(), "probe_limited": c.probeLimited.Load(),
		"bad_tree": c.badTree.Load(), "tree_stray": c.treeStray.Load(), "tree_no_tree": c.treeNoTree.Load(),
	}
}

// Routed returns how many routed packets this node sent, forwarded and
// had delivered, and how many control messages it flooded.
func (p *Plane) Routed() map[string]uint64 {
	c := &p.counters
	return map[string]uint64{"sent": c.routedSent.Load(), "forwarded": c.routedForwarded.Load(), "delivered": c.routedDelivered.Load(),
		"flooded": c.flooded.Load(), "roamed": c.roamed.Load(),
		"relayed_broadcasts": c.relayedBroadcasts.Load(), "routed_around": c.suspected.Load(),
		"routed_around_lossy": c.lossy.Load(), "lossy_kept": c.lossyKept.Load(),
		"tree_sent": c.treeSent.Load(), "tree_forwarded": c.treeForwarded.Load()}
}

// MACs is the number of learned MACs.
func (p *Plane) MACs() int { return p.macs.size() }

// tapStats are the TAP's counters: one writer per field family (the TAP
// reader for rx, TAP writers for tx), lock-free readers.
type tapStats struct {
	rxFrames [tap.NumClasses]atomic.Uint64
	rxBytes  atomic.Uint64
	txFrames atomic.Uint64
	txBytes  atomic.Uint64
	batches  atomic.Uint64
}

// TAPStats are cumulative TAP counters.
type TAPStats struct {
	RxFrames [tap.NumClasses]uint64 // frames read, by class
	RxBytes  uint64
	TxFrames uint64 // frames written (from the overlay and the node's own)
	TxBytes  uint64
	Batches  uint64 // reads (each returns a batch)
}

// TAPStats returns the TAP counters.
func (p *Plane) TAPStats() TAPStats {
	s := &p.tapStats
	out := TAPStats{RxBytes: s.rxBytes.Load(), TxFrames: s.txFrames.Load(), TxBytes: s.txBytes.Load(), Batches: s.batches.Load()}
	for c := range tap.NumClasses {
		out.RxFrames[c] = s.rxFrames[c].Load()
	}
	return out
}
