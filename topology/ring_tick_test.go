package topology

import (
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Tick as a table on a fake clock: each step does something to the ring
// and says what Tick must answer after it.
func TestRingTick(t *testing.T) {
	self := nodeID(10)
	r := NewRing(self, RingConfig{Successors: 2, Refresh: 10 * time.Second})
	wants := func(id nodeid.ID, w bool) func(time.Time) {
		return func(time.Time) { r.Apply(id, &Neighbors{Links: []NeighborLink{{ID: self, Wanted: w}}}) }
	}
	up := func(id nodeid.ID) func(time.Time) { return func(now time.Time) { r.LinkUp(id, now) } }
	announce := func(now time.Time) { r.Neighbors(now) }
	steps := []struct {
		name     string
		at       time.Duration
		do       func(time.Time)
		connect  []nodeid.ID
		close    []nodeid.ID
		announce bool
	}{
		{name: "learn three: connect the two successors, nothing to announce on no links",
			do: func(now time.Time) {
				for _, n := range []byte{20, 30, 40} {
					r.Learn(nodeID(n), now)
				}
			}, connect: ids(20, 30)},
		{name: "successor 20 up: announce it", at: time.Second, do: up(nodeID(20)), connect: ids(30), announce: true},
		{name: "announced", at: time.Second, do: announce, connect: ids(30)},
		{name: "40 links to us (its chord): its wish unknown yet, keep it",
			at: 2 * time.Second, do: up(nodeID(40)), connect: ids(30), announce: true},
		{name: "announced", at: 2 * time.Second, do: announce, connect: ids(30)},
		{name: "40 wants it: keep", at: 3 * time.Second, do: wants(nodeID(40), true), connect: ids(30)},
		{name: "40 no longer wants it, nor do we: close", at: 4 * time.Second, do: wants(nodeID(40), false),
			connect: ids(30), close: ids(40)},
		{name: "an on-demand link to 40 after all: keep, and say so",
			at: 5 * time.Second, do: func(time.Time) { r.SetOnDemand(ids(40)) }, connect: ids(30), announce: true},
		{name: "announced", at: 5 * time.Second, do: announce, connect: ids(30)},
		{name: "20 does not want us: we want it, keep", at: 6 * time.Second, do: wants(nodeID(20), false), connect: ids(30)},
		{name: "refresh due", at: 15 * time.Second, do: func(time.Time) {}, connect: ids(30), announce: true},
		{name: "on-demand over: 40 wanted by nobody",
			at: 16 * time.Second, do: func(now time.Time) { r.Neighbors(now); r.SetOnDemand(nil) },
			connect: ids(30), close: ids(40), announce: true},
		{name: "closed", at: 16 * time.Second, do: func(now time.Time) { r.LinkDown(nodeID(40), now) },
			connect: ids(30), announce: true},
		{name: "30 fails to set up: held down, 40 (known on a lease) takes its place",
			at: 17 * time.Second, do: func(now time.Time) { r.LinkFailed(nodeID(30), now) }, connect: ids(40), announce: true},
	}
	for _, s := range steps {
		now := epoch0.Add(s.at)
		s.do(now)
		a := r.Tick(now)
		if !slices.Equal(a.Connect, s.connect) || !slices.Equal(a.Close, s.close) || a.Announce != s.announce {
			t.Fatalf("%s: Tick = connect %v close %v announce %v; want %v %v %v", s.name,
				shorts(a.Connect), shorts(a.Close), a.Announce, shorts(s.connect), shorts(s.close), s.announce)
		}
	}
}

// What Neighbors says: every link, Wanted for the node's own reasons.
func TestRingNeighbors(t *testing.T) {
	r := NewRing(nodeID(10), RingConfig{Successors: 1})
	for _, n := range []byte{20, 30, 40} {
		r.LinkUp(nodeID(n), epoch0)
	}
	r.SetOnDemand(ids(40))
	m := r.Neighbors(epoch0)
	want := []NeighborLink{{nodeID(20), true}, {nodeID(30), false}, {nodeID(40), true}}
	if !slices.Equal(m.Links, want) {
		t.Fatalf("Neighbors %+v, want %+v", m.Links, want)
	}
	if !r.Wanted(nodeID(20), epoch0) || r.Wanted(nodeID(30), epoch0) {
		t.Fatal("Wanted disagrees with Neighbors")
	}
}

// A joining node that knows one node learns its place from that node's
// announcement, carried as bytes.
func TestRingJoinThroughAnnouncement(t *testing.T) {
	cfg := RingConfig{Successors: 2}
	p := NewRing(nodeID(20), cfg)
	for _, n := range []byte{10, 30, 40} {
		p.LinkUp(nodeID(n), epoch0)
	}
	n := NewRing(nodeID(25), cfg)
	n.Learn(p.Self(), epoch0) // all the rendezvous told it
	if a := n.Tick(epoch0); !slices.Equal(a.Connect, []nodeid.ID{p.Self()}) {
		t.Fatalf("joiner wants %v, want only its bootstrap", shorts(a.Connect))
	}
	p.LinkUp(n.Self(), epoch0)
	n.LinkUp(p.Self(), epoch0)
	if !p.Tick(epoch0).Announce {
		t.Fatal("a new link must be announced")
	}
	b, err := p.Neighbors(epoch0).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m Neighbors
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !n.Apply(p.Self(), &m) {
		t.Fatal("the announcement must change the joiner's view")
	}
	succ, _ := n.Desired(epoch0)
	if a := n.Tick(epoch0); !slices.Equal(succ, ids(30, 40)) || !slices.Equal(a.Connect, ids(30, 40)) || len(a.Close) != 0 {
		t.Fatalf("joiner: successors %v, Tick %+v; want 30 and 40 and to keep its bootstrap", shorts(succ), a)
	}
}

// Answering a new peer with this node's links (NeighborsFor) is not an
// announcement: the other links still hear of the new link at the next
// Tick. (Answering with Neighbors marked it sent to all, and a peer
// linked before heard of the new link only at the next refresh.)
func TestAnswerDoesNotHideNews(t *testing.T) {
	r := NewRing(nodeID(1), RingConfig{Successors: 2})
	a, b := nodeID(0x40), nodeID(0x80)
	now := epoch0
	r.LinkUp(a, now)
	if !r.Tick(now).Announce {
		t.Fatal("a new link is not announced")
	}
	r.Neighbors(now)
	if r.Tick(now).Announce {
		t.Fatal("announced twice")
	}
	r.LinkUp(b, now)
	if nb := r.NeighborsFor(now); len(nb.Links) != 2 {
		t.Fatalf("answer to b lists %d links", len(nb.Links))
	}
	if !r.Tick(now).Announce {
		t.Fatal("after answering b, a does not hear of the link to b")
	}
}
