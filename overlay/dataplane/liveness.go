package dataplane

import (
	"context"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/wire"
)

// Liveness: every authenticated packet from a peer marks it heard
// (outside.go); link control keeps each idle link heard at the other end
// with keepalives and declares a link dead when its peer has been
// silent too long:
//
//	link control, every tick:  Plane.Tick(now)
//	                           per up link: nothing sent since the last
//	                           tick? Plane.Keepalive(peer)
//	                           Peer.Heard() older than the limit? down
//	socket and relay readers:  packet opens ─► Peer.heard = the clock
//	                           empty frame, no flags ─► a keepalive, done
//
// Roaming: a data packet from an address no link has may be a peer's
// after its NAT forgot the mapping (or its address changed). Receive
// tries it against the keys of the peers that went quiet (heard nothing
// for roamQuiet, on a path of the node's own socket), at most roamRate a
// second; one that opens under a peer's keys, inside its replay window,
// is that peer's: it is taken, and link control moves the link to the
// new address (HandleRoam), as WireGuard follows an endpoint. Nothing
// but the keys decides, so a member cannot move another's link, and a
// replayed packet from elsewhere does not open.
//
// A keepalive is a data packet sealed like any other (the link's keys,
// counter and replay window) with an empty payload, so it costs 26 bytes
// and cannot be forged or replayed. The clock is coarse (one load and,
// once per tick and peer, one store per packet): liveness needs tenths
// of a second, not each packet's time.

// Tick advances the clock that marks peers heard; link control calls it
// on every tick of its loop.
func (p *Plane) Tick(now time.Time) { p.advance(now.UnixMilli()) }

// advance moves the clock to ms unless it is there already: Tick and
// RunLiveness both move it, and a late Tick must not move it back (a
// heard stamp would age by up to a tick and could make a peer suspect).
func (p *Plane) advance(ms int64) {
	for {
		old := p.clock.Load()
		if ms <= old || p.clock.CompareAndSwap(old, ms) {
			return
		}
	}
}

// Keepalive sends peer an empty data packet on its path, if it has one.
func (p *Plane) Keepalive(peer *Peer) {
	pa := peer.path.Load()
	if pa == nil {
		return
	}
	var s scratch
	p.seal(&s, peer, pa, 0, nil)
	p.drain(&s)
}

// Roaming bounds: the quiet time before a peer's keys are tried against
// packets from unknown addresses, and the trials a second (each an
// AES-GCM open that fails for a stranger's packet).
const (
	roamQuiet      = time.Second
	roamRate       = 200
	roamBurst      = 50
	roamCandidates = 8 // quiet peers tried per packet
)

// roamed tries pkt, from an address no link has, against the quiet peers'
// keys; it reports whether one took it.
func (p *Plane) roamed(s *scratch, v *View, pkt nat.Packet) bool {
	if !wire.IsData(pkt.Data) || len(v.up) == 0 {
		return false
	}
	now := p.clock.Load()
	tried := 0
	var buf []byte // one scratch buffer for every trial
	for _, peer := range v.up {
		pa := peer.path.Load()
		if pa == nil || pa.Relay != nil || now-peer.heard.Load() < roamQuiet.Milliseconds() {
			continue
		}
		if tried == roamCandidates || !p.roamTrials.Allow() {
			p.limits.roam.Log("from", pkt.Addr.String())
			return false
		}
		tried++
		if buf == nil {
			buf = s.next(p.maxPacket())[:0]
		}
		f, flags, err := pa.Keys.Open(buf, pkt.Data)
		if err != nil {
			continue
		}
		p.counters.roamed.Add(1)
		if p.onRoam != nil {
			p.onRoam(peer, pkt.Addr)
		}
		p.opened(s, v, peer, f, flags)
		return true
	}
	return false
}

// HandleRoam registers f to hear that a packet of peer's authenticated
// from addr, an address its link does not have. f runs on a reader
// goroutine and must not block. Call it before the readers start.
func (p *Plane) HandleRoam(f func(peer *Peer, addr netip.AddrPort)) { p.onRoam = f }

func newRoamLimiter() *rate.Limiter { return rate.NewLimiter(roamRate, roamBurst) }

// Fast reroute. Link control declares a link dead after 3 s of silence;
// meanwhile, frames routed through a dead peer are lost. So a link that
// carries traffic is watched closely: once this node has sent on it (a
// frame or a control message within the last second) and heard nothing
// back for probeAfter, it sends the peer a probe (an empty packet with
// FlagProbe, sealed like any other) every probeEvery, which the peer
// answers at once with a keepalive; with suspectProbes of them unanswered
// and suspectAfter of silence, the peer is suspect and link control routes
// around it (the link stays, for traffic to the peer itself, until it is
// heard again or declared dead). A link nothing was sent on for a second
// is not probed: nothing goes through it to lose.
//
//	RunLiveness, every livenessEvery: the clock; per up link:
//	  sent lately or suspect, silent ≥ probeAfter          ─► probe (every probeEvery)
//	  sent lately, silent ≥ suspectAfter, 4 probes unanswered ─► suspect: onSuspect(peer, true)
//	  suspect and heard since                                ─► onSuspect(peer, false)
//
// With 1% random loss each way, a false suspicion needs four probes or
// their answers lost in a row (about 2·10^-7 per silence that long), and
// costs a moment's detour, not the link.
const (
	livenessEvery = 50 * time.Millisecond
	probeAfter    = 250 * time.Millisecond
	probeEvery    = 100 * time.Millisecond
	suspectAfter  = 700 * time.Millisecond
	suspectProbes = 4
	sendingWithin = time.Second
	// answerEvery bounds the answers to one peer's probes (they come
	// every probeEvery): a member cannot make this node send more.
	answerEvery = 20 * time.Millisecond
)

// RunLiveness runs the fast liveness of up links until ctx ends (see
// above); onSuspect is called from its goroutine, for each change.
func (p *Plane) RunLiveness(ctx context.Context, onSuspect func(peer *Peer, suspect bool)) {
	t := time.NewTicker(livenessEvery)
	defer t.Stop()
	var s scratch
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.watch(&s, now.UnixMilli(), onSuspect)
		}
	}
}

// watch is one round of RunLiveness at now (Unix milliseconds); s is its
// goroutine's scratch.
func (p *Plane) watch(s *scratch, now int64, onSuspect func(*Peer, bool)) {
	p.advance(now)
	for _, peer := range p.view.Load().up {
		heard := peer.heard.Load()
		if heard == 0 {
			continue // not heard yet: link control's set-up timers apply
		}
		if heard != peer.lastHeard {
			peer.lastHeard, peer.unanswered = heard, 0
		}
		silent := now - heard
		sending := now-peer.sent.Load() < sendingWithin.Milliseconds()
		switch {
		case peer.suspect && silent < probeAfter.Milliseconds():
			peer.suspect = false
			onSuspect(peer, false)
		case sending && !peer.suspect && silent >= suspectAfter.Milliseconds() && peer.unanswered >= suspectProbes:
			peer.suspect = true
			p.counters.suspected.Add(1)
			onSuspect(peer, true)
		}
		if (sending || peer.suspect) && silent >= probeAfter.Milliseconds() && now-peer.probed >= probeEvery.Milliseconds() {
			peer.probed = now
			peer.unanswered++
			if pa := peer.path.Load(); pa != nil {
				p.seal(s, peer, pa, wire.FlagProbe, nil)
			}
		}
	}
	p.drain(s)
}

// answerProbe answers a probe from peer with a keepalive in s's batch, at
// most one per answerEvery (more are counted, probe_limited).
func (p *Plane) answerProbe(s *scratch, peer *Peer) {
	now := p.clock.Load()
	if last := peer.answered.Load(); now-last < answerEvery.Milliseconds() || !peer.answered.CompareAndSwap(last, now) {
		p.counters.probeLimited.Add(1)
		return
	}
	if pa := peer.path.Load(); pa != nil {
		p.seal(s, peer, pa, 0, nil)
	}
}
