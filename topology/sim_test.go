package topology

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// An in-process model of the overlay, to measure the ring: N nodes each
// run the real Ring, Routes and Fanout; links and messages are
// modelled. Time is simulated (an event queue), so minutes of overlay
// life take milliseconds.
//
// Model:
//   - each node's control loop ticks every simTick: Ring.Tick, then it
//     sets up, closes and announces as told;
//   - link set-up: the offer and the answer are routed through the
//     overlay (one control message per hop) when the initiator has a link
//     and both routes arrive, else they go through the rendezvous (four
//     messages); the link is up simSetup (ICE + DTLS) after the answer;
//   - a link to a node that is down fails after simSetupTimeout;
//   - a crashed node's links fail at its peers after simDetect (ICE
//     consent); a leaving node says goodbye on each link at once;
//   - with presence, the rendezvous lists every node that is up (it
//     notices a crash after simDetect) and each node re-reads the list
//     every Refresh; without, each node is told a few random nodes among
//     those already up when it starts (the first node is told none);
//   - the model is kind to overlay signaling: it knows at once whether
//     both routes arrive, where a real node would wait for a timeout
//     before falling back to the rendezvous.
const (
	simTick         = time.Second
	simHop          = 20 * time.Millisecond
	simRV           = 50 * time.Millisecond
	simSetup        = time.Second
	simSetupTimeout = 10 * time.Second
	simDetect       = 10 * time.Second
)

type simParams struct {
	n                  int
	successors, chords int
	bootstrap          int // 0: the rendezvous lists everyone; else each node knows this many
	seed               uint64
}

// simCounts are the messages sent, by kind.
type simCounts struct {
	announce   int // Neighbors whose content changed since the sender's last
	refresh    int // Neighbors repeating the sender's last
	signal     int // link signaling through the overlay, one per hop
	bye        int // goodbyes on closed links
	rendezvous int // link signaling through the rendezvous
	linkUps    int
	linkDowns  int
}

// control is what the overlay carries because of a change (refreshes
// apart), the figure per membership change.
func (c simCounts) control() int { return c.announce + c.signal + c.bye }

func (c simCounts) sub(o simCounts) simCounts {
	return simCounts{c.announce - o.announce, c.refresh - o.refresh, c.signal - o.signal,
		c.bye - o.bye, c.rendezvous - o.rendezvous, c.linkUps - o.linkUps, c.linkDowns - o.linkDowns}
}

type simNode struct {
	id       nodeid.ID
	ring     *Ring
	up       bool
	linked   map[nodeid.ID]bool
	links    []nodeid.ID // linked, ascending: what routing reads
	pending  map[nodeid.ID]bool
	lastSent []NeighborLink
	presence time.Duration // when it last read the presence list
}

type sim struct {
	t       testing.TB
	p       simParams
	rng     *rand.Rand
	now     time.Duration
	q       simQueue
	seq     uint64
	nodes   []*simNode // every node ever made, in creation order
	byID    map[nodeid.ID]*simNode
	present map[nodeid.ID]bool // the rendezvous's list, with presence
	count   simCounts
	changed time.Duration // the latest link up or down
}

func newSim(t testing.TB, p simParams) *sim {
	return &sim{t: t, p: p, rng: rand.New(rand.NewPCG(p.seed, 0x5eed)),
		byID: make(map[nodeid.ID]*simNode), present: make(map[nodeid.ID]bool)}
}

func (s *sim) wall() time.Time { return epoch0.Add(s.now) }

// newNode makes a node with a random ID; it is down until start.
func (s *sim) newNode() *simNode {
	var id nodeid.ID
	for i := 0; i < len(id); i += 8 {
		v := s.rng.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	n := &simNode{id: id, linked: make(map[nodeid.ID]bool), pending: make(map[nodeid.ID]bool),
		ring: NewRing(id, RingConfig{Successors: s.p.successors, Chords: s.p.chords})}
	s.nodes = append(s.nodes, n)
	s.byID[id] = n
	return n
}

// start brings n up knowing the nodes given, with a random tick phase.
func (s *sim) start(n *simNode, know []nodeid.ID) {
	n.up = true
	for _, id := range know {
		n.ring.Learn(id, s.wall())
	}
	n.presence = s.now
	s.after(time.Duration(s.rng.Int64N(int64(simTick))), func() { s.tick(n) })
}

// upNodes returns the nodes that are up, ascending by ID.
func (s *sim) upNodes() []*simNode {
	var up []*simNode
	for _, n := range s.nodes {
		if n.up {
			up = append(up, n)
		}
	}
	slices.SortFunc(up, func(a, b *simNode) int { return a.id.Compare(b.id) })
	return up
}

func (s *sim) randomUp(k int, except nodeid.ID) []nodeid.ID {
	var ids []nodeid.ID
	for _, n := range s.upNodes() {
		if n.id != except {
			ids = append(ids, n.id)
		}
	}
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids[:min(k, len(ids))]
}

func (s *sim) tick(n *simNode) {
	if !n.up {
		return
	}
	now := s.wall()
	if s.p.bootstrap == 0 && s.now-n.presence >= n.ring.Config().Refresh {
		n.presence = s.now
		for id := range s.present {
			n.ring.Learn(id, now)
		}
	}
	a := n.ring.Tick(now)
	for _, id := range a.Connect {
		if !n.pending[id] && !n.linked[id] {
			s.connect(n, id)
		}
	}
	for _, id := range a.Close {
		s.count.bye++
		s.unlink(n, s.byID[id], false)
	}
	if a.Announce {
		m := n.ring.Neighbors(now)
		same := slices.Equal(m.Links, n.lastSent)
		n.lastSent = m.Links
		for _, id := range n.links {
			if same {
				s.count.refresh++
			} else {
				s.count.announce++
			}
			peer := s.byID[id]
			s.after(simHop, func() {
				if n.up && peer.up && peer.linked[n.id] {
					peer.ring.Apply(n.id, m)
				}
			})
		}
	}
	s.after(simTick, func() { s.tick(n) })
}

// connect sets up a link from a to b, as link signaling and ICE would.
func (s *sim) connect(a *simNode, id nodeid.ID) {
	b := s.byID[id]
	a.pending[id] = true
	if b == nil || !b.up {
		s.after(simSetupTimeout, func() {
			delete(a.pending, id)
			if a.up {
				a.ring.LinkFailed(id, s.wall())
			}
		})
		return
	}
	delay := 4 * simRV
	h1, ok1 := s.route(a, b.id)
	h2, ok2 := 0, false
	if ok1 {
		h2, ok2 = s.route(b, a.id)
	}
	if len(a.links) > 0 && ok1 && ok2 {
		s.count.signal += h1 + h2
		delay = time.Duration(h1+h2) * simHop
	} else {
		s.count.signal += h1 + h2 // what went out before falling back
		s.count.rendezvous += 4
	}
	s.after(delay+simSetup, func() {
		switch {
		case !a.up:
		case !b.up:
			s.after(simSetupTimeout-simSetup, func() {
				delete(a.pending, id)
				a.ring.LinkFailed(id, s.wall())
			})
			return
		case !a.linked[id]:
			s.link(a, b)
		}
		delete(a.pending, id)
	})
}

// route walks a packet from src toward dst the way the data path would,
// on each node's Ring.Routes, and returns the hops it took and whether it
// arrived.
func (s *sim) route(src *simNode, dst nodeid.ID) (hops int, ok bool) {
	next, found := src.ring.Routes(s.wall()).NextHop(dst)
	if !found {
		return 0, false
	}
	h := Route{Src: src.id, Dst: dst, TTL: HopLimit}
	for hops = 1; ; hops++ {
		n := s.byID[next]
		if !n.up {
			return hops, false
		}
		var v Verdict
		if next, v = n.ring.Routes(s.wall()).Forward(&h); v != Forward {
			return hops, v == Deliver
		}
	}
}

func (s *sim) link(a, b *simNode) {
	now := s.wall()
	a.linked[b.id], b.linked[a.id] = true, true
	a.links, b.links = sortedKeys(a.linked), sortedKeys(b.linked)
	a.ring.LinkUp(b.id, now)
	b.ring.LinkUp(a.id, now)
	s.count.linkUps++
	s.changed = s.now
}

// unlink takes the link a–b down at both ends; failed says how the ends
// see it (LinkFailed: lost or goodbye of a leaving node; else LinkDown).
func (s *sim) unlink(a, b *simNode, failed bool) {
	if !a.linked[b.id] {
		return
	}
	now := s.wall()
	delete(a.linked, b.id)
	delete(b.linked, a.id)
	a.links, b.links = sortedKeys(a.linked), sortedKeys(b.linked)
	for _, e := range [][2]*simNode{{a, b}, {b, a}} {
		if failed {
			e[0].ring.LinkFailed(e[1].id, now)
		} else {
			e[0].ring.LinkDown(e[1].id, now)
		}
	}
	s.count.linkDowns++
	s.changed = s.now
}

func sortedKeys(m map[nodeid.ID]bool) []nodeid.ID {
	ids := make([]nodeid.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, nodeid.ID.Compare)
	return ids
}
