package dataplane

import (
	"context"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
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
// meanwhile, frames routed through a dead peer are lost, and frames
// routed through a peer whose underlay loses a share of its packets are
// lost in that share. So a link that carries traffic is watched closely:
// while this node sends on it (a frame or a control message within the
// last second), it sends the peer a probe every probeEvery (an empty-ish
// packet with FlagProbe and a sequence number, sealed like any other),
// which the peer answers at once with the same number. From the answers:
//
//   - silence: heard nothing for suspectAfter, with suspectProbes probes
//     unanswered: the peer is suspect;
//   - loss: of the last lossWindow probes (each lost when unanswered
//     after probeTimeout plus four round trips), lossyOn or more lost:
//     the link is lossy, until lossyOff or fewer are;
//
// and while a peer is suspect or its link lossy, link control routes
// around it (the link stays, for traffic to the peer itself, until it
// is heard again, loses less, or is declared dead). A link nothing was
// sent on for a second is not probed: nothing goes through it to lose.
// At most half of the up links are lossy at once: a node whose own
// underlay loses packets sees every link lossy, and going around all of
// them helps nothing.
//
//	RunLiveness, every livenessEvery: the clock; per up link:
//	  sent lately, or suspect or lossy               ─► probe (every probeEvery)
//	  sent lately, silent ≥ suspectAfter, 4 probes unanswered ─► suspect
//	  ≥ lossyOn of the last lossWindow probes lost   ─► lossy
//	  suspect and heard since; lossy and ≤ lossyOff lost ─► through it again
//
// With 1% random loss each way (2% of round trips), a false suspicion
// needs four probes or their answers lost in a row (about 2·10^-7 per
// silence that long); a false lossy mark needs 5 of 16 lost (about 10^-5
// per probe, one an hour per busy link) and costs a detour of a second,
// not the link. With 30% loss at the peer (51% of round trips) the mark
// comes about 0.8 s after the loss starts.
const (
	livenessEvery = 50 * time.Millisecond
	probeAfter    = 250 * time.Millisecond
	probeEvery    = 50 * time.Millisecond
	suspectAfter  = 700 * time.Millisecond
	suspectProbes = 4
	sendingWithin = time.Second
	// probeTimeout: a probe unanswered this long (plus four smoothed
	// round trips) is lost.
	probeTimeout = 250 * time.Millisecond
	lossWindow   = 16
	lossyOn      = 5
	lossyOff     = 1
	lossMeasured = 8 // results needed before a link can be lossy
	maxRTT       = 10 * time.Second
	// probeRing: the probes in flight a link keeps track of; far more
	// than are ever unresolved (probeTimeout / probeEvery).
	probeRing = 64
	// answerRate bounds the answers to one peer's probes (they come
	// every probeEvery): a member cannot make this node send more.
	answerRate  = 40
	answerBurst = 8
)

// linkQuality is RunLiveness's measure of one link's probes.
type linkQuality struct {
	seq      uint32           // the next probe's number
	resolved uint32           // the oldest probe not yet answered or lost
	sent     [probeRing]int64 // each probe's send time, Unix microseconds
	history  uint16           // the last lossWindow results, 1 = lost
	results  int              // results in history (≤ lossWindow)
	srtt     int64            // smoothed round trip, microseconds (0: none yet)
	lossy    bool
	kept     bool // lossy but not marked (half the links are): counted
}

// lost is how many of the last lossWindow probes were lost.
func (q *linkQuality) lost() int { return bits.OnesCount16(q.history) }

// resolve moves q past the probes answered or timed out at now (Unix
// microseconds), in order, and records each result.
func (q *linkQuality) resolve(answers *[probeRing]atomic.Uint64, now int64) {
	for q.resolved != q.seq {
		n := q.resolved
		a := answers[n%probeRing].Load()
		sent := q.sent[n%probeRing]
		lost := false
		switch {
		case a != 0 && uint32(a>>32) == n: // 0: nothing stored in the slot yet
			// The low 32 bits wrap every 71 minutes; a sample out of
			// range (the clock stepped) is left out.
			if rtt := int64(int32(uint32(a) - uint32(sent))); rtt < 0 || rtt > maxRTT.Microseconds() {
				break
			} else if q.srtt == 0 {
				q.srtt = rtt
			} else {
				q.srtt += (rtt - q.srtt) / 8
			}
		case now-sent >= probeTimeout.Microseconds()+4*q.srtt:
			lost = true
		default:
			return // not answered yet, and not late
		}
		q.history <<= 1
		if lost {
			q.history |= 1
		}
		q.results = min(q.results+1, lossWindow)
		q.resolved++
	}
}

// RunLiveness runs the fast liveness of up links until ctx ends (see
// above); onSuspect is called from its goroutine when a peer is to be
// routed around (suspect or lossy) and when no longer.
func (p *Plane) RunLiveness(ctx context.Context, onSuspect func(peer *Peer, suspect bool)) {
	t := time.NewTicker(livenessEvery)
	defer t.Stop()
	var s scratch
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.watch(&s, now, onSuspect)
		}
	}
}

// watch is one round of RunLiveness at now; s is its goroutine's scratch.
func (p *Plane) watch(s *scratch, at time.Time, onSuspect func(*Peer, bool)) {
	now, micros := at.UnixMilli(), at.UnixMicro()
	p.advance(now)
	up := p.view.Load().up
	lossy := 0
	for _, peer := range up {
		if peer.quality.lossy {
			lossy++
		}
	}
	for _, peer := range up {
		heard := peer.heard.Load()
		if heard == 0 {
			continue // not heard yet: link control's set-up timers apply
		}
		if heard != peer.lastHeard {
			peer.lastHeard, peer.unanswered = heard, 0
		}
		q := &peer.quality
		q.resolve(&peer.answers, micros)
		silent := now - heard
		// Busy: this node sent on the link lately, or had traffic from
		// it (a tree's parent, a stream's hop): either way a dead peer
		// costs frames until it is routed around.
		sending := now-peer.sent.Load() < sendingWithin.Milliseconds() || now-peer.got.Load() < sendingWithin.Milliseconds()
		wasAround := peer.suspect || q.lossy
		switch {
		case peer.suspect && silent < probeAfter.Milliseconds():
			peer.suspect = false
		case sending && !peer.suspect && silent >= suspectAfter.Milliseconds() && peer.unanswered >= suspectProbes:
			peer.suspect = true
			p.counters.suspected.Add(1)
		}
		switch {
		case q.lost() <= lossyOff:
			q.kept = false
			if q.lossy {
				q.lossy = false
				lossy--
			}
		case !q.lossy && sending && q.results >= lossMeasured && q.lost() >= lossyOn:
			if 2*(lossy+1) > len(up) {
				if !q.kept {
					q.kept = true // counted once per time the mark is due
					p.counters.lossyKept.Add(1)
					p.limits.lossy.Log("peer", peer.ID.Short(), "lost", q.lost(), "of", q.results)
				}
				break
			}
			q.lossy = true
			lossy++
			p.counters.lossy.Add(1)
		}
		if around := peer.suspect || q.lossy; around != wasAround {
			onSuspect(peer, around)
		}
		switch {
		case peer.suspect:
			peer.around.Store(aroundSilent)
		case q.lossy:
			peer.around.Store(aroundLossy)
		default:
			peer.around.Store(0)
		}
		if q.results > 0 {
			peer.loss.Store(int32(q.lost()))
		}
		peer.rtt.Store(q.srtt)
		if (sending || peer.suspect || q.lossy) && now-peer.probed >= probeEvery.Milliseconds() {
			peer.probed = now
			if silent >= probeAfter.Milliseconds() {
				peer.unanswered++
			}
			if pa := peer.path.Load(); pa != nil {
				n := q.seq
				q.seq++
				q.sent[n%probeRing] = micros
				if q.seq-q.resolved > probeRing {
					q.resolved = q.seq - probeRing // cannot happen: resolve times them out first
				}
				var b [wire.ProbeLen]byte
				b[0] = wire.ProbeAsk
				binary.BigEndian.PutUint32(b[1:], n)
				p.seal(s, peer, pa, wire.FlagProbe, b[:])
			}
		}
	}
	p.drain(s)
}

// answerProbe answers a probe from peer (payload: empty, or a ProbeAsk)
// in s's batch, within answerRate (more are counted, probe_limited).
func (p *Plane) answerProbe(s *scratch, peer *Peer, probe []byte) {
	if !peer.answering.Allow() {
		p.counters.probeLimited.Add(1)
		return
	}
	pa := peer.path.Load()
	if pa == nil {
		return
	}
	if len(probe) == 0 {
		p.seal(s, peer, pa, 0, nil)
		return
	}
	var b [wire.ProbeLen]byte
	b[0] = wire.ProbeAnswer
	copy(b[1:], probe[1:])
	p.seal(s, peer, pa, wire.FlagProbe, b[:])
}

// probeAnswered records peer's answer to this node's probe (payload a
// ProbeAnswer) for RunLiveness.
func (p *Plane) probeAnswered(peer *Peer, answer []byte) {
	n := binary.BigEndian.Uint32(answer[1:])
	peer.answers[n%probeRing].Store(uint64(n)<<32 | uint64(uint32(p.micros())))
}

// Why routes go around a peer (Peer.Quality).
const (
	aroundSilent = 1
	aroundLossy  = 2
)

// LinkQuality is what the fast liveness measured of a link.
type LinkQuality struct {
	// Lost is how many of the last 16 probes went unanswered (-1: none
	// measured: nothing sent on the link lately).
	Lost int
	RTT  time.Duration // smoothed round trip of the probes (0: none yet)
	// Around says why routes go around the peer: "silent", "lossy" or "".
	Around string
}

// Lossy reports whether the link to id is up and routed around for its
// loss (not for silence: a lossy peer is there, and still gets most of
// what is sent to it). Safe from any goroutine.
func (p *Plane) Lossy(id nodeid.ID) bool {
	peer, _ := p.view.Load().path(id)
	return peer != nil && peer.around.Load() == aroundLossy
}

// Quality is what the fast liveness measured of the link to peer.
func (peer *Peer) Quality() LinkQuality {
	q := LinkQuality{Lost: int(peer.loss.Load()), RTT: time.Duration(peer.rtt.Load()) * time.Microsecond}
	switch peer.around.Load() {
	case aroundSilent:
		q.Around = "silent"
	case aroundLossy:
		q.Around = "lossy"
	}
	return q
}
