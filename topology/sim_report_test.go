package topology

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// TestSimulate measures the ring in the model of sim_test.go at 100 and
// 500 nodes, from a cold start where every node knows everyone (the
// rendezvous's presence list) or only 3 random nodes, then at rest, then
// through 5 joins, 5 leaves, 5 crashes and 5 lost links (one at a time,
// 2 minutes each), and prints a table:
//
//	go test -run TestSimulate -v ./topology
//
// It also checks what must hold whatever the figures: the ring converges
// and repairs itself, every route arrives within HopLimit, and a
// broadcast reaches every node exactly once.
func TestSimulate(t *testing.T) {
	type run struct{ n, bootstrap int }
	runs := []run{{100, 0}, {100, 3}, {500, 0}, {500, 3}}
	if testing.Short() {
		runs = runs[:2]
	}
	reports := make([]simReport, len(runs))
	t.Run("runs", func(t *testing.T) {
		for i, r := range runs {
			p := simParams{n: r.n, successors: 2, chords: 2, bootstrap: r.bootstrap, seed: uint64(i + 1)}
			t.Run(fmt.Sprintf("n=%d/bootstrap=%d", r.n, r.bootstrap), func(t *testing.T) {
				t.Parallel() // each run is its own world; two cores halve the wait
				reports[i] = simulate(t, p)
			})
		}
	})
	if t.Failed() {
		return
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "nodes\tknows\tring ok\tquiet\tcold msgs/node (rdv)\tlinks/node (max)\thops mean/max\tno lookahead\tcw-only\tbcast depth\tflood depth\tflood msgs\t")
	for _, r := range reports {
		fmt.Fprintf(w, "%d\t%s\t%.1fs\t%.1fs\t%.1f (%.1f)\t%.1f (%d)\t%.2f / %d\t%.2f / %d\t%.2f / %d\t%.2f / %d\t%.2f / %d\t%d\t\n",
			r.n, r.knows, r.ringOK.Seconds(), r.quiet.Seconds(), r.cold, r.coldRV, r.degMean, r.degMax,
			r.hopsMean, r.hopsMax, r.greedyMean, r.greedyMax, r.cwMean, r.cwMax, r.bcastMean, r.bcastMax, r.floodMean, r.floodMax, r.floodMsgs)
	}
	fmt.Fprintln(w, "\t")
	fmt.Fprintln(w, "nodes\tknows\trest msgs/node/min\tjoin msgs (rdv)\tleave msgs\tcrash msgs\tlink loss msgs\trepair s join/leave/crash/loss (worst)\t")
	for _, r := range reports {
		fmt.Fprintf(w, "%d\t%s\t%.1f\t%.0f (%.0f)\t%.0f\t%.0f\t%.0f\t%.0f / %.0f / %.0f / %.0f\t\n",
			r.n, r.knows, r.rest, r.join, r.joinRV, r.leave, r.crash, r.loss,
			r.repair[0].Seconds(), r.repair[1].Seconds(), r.repair[2].Seconds(), r.repair[3].Seconds())
	}
	w.Flush()
	t.Logf("successors 2, chords 2, refresh %v, hold-down %v; tick %v, hop %v, set-up %v, crash detection %v\n%s",
		DefaultRingRefresh, DefaultHoldDown, simTick, simHop, simSetup, simDetect, b.String())
}

// simReport is one row of the table. Message counts are control
// messages on the overlay (announcements that changed, signaling hops,
// goodbyes); "rdv" counts signaling through the rendezvous, and "rest"
// includes the refreshes.
type simReport struct {
	n                            int
	knows                        string
	ringOK, quiet                time.Duration // from the cold start
	cold, coldRV                 float64       // per node, until quiet
	degMean                      float64
	degMax                       int
	hopsMean, greedyMean, cwMean float64
	hopsMax, greedyMax, cwMax    int
	bcastMean, floodMean         float64
	bcastMax, floodMax           int
	floodMsgs                    int
	rest                         float64 // per node per minute
	join, joinRV, leave, crash   float64 // per change, mean
	loss                         float64
	repair                       [4]time.Duration // join, leave, crash, loss: worst
}

const (
	simColdMax   = 15 * time.Minute // the cold start must converge by then
	simQuietSpan = 3 * time.Minute  // no link change for this long is quiet
	simRest      = 5 * time.Minute
	simChanges   = 5               // of each kind
	simWindow    = 2 * time.Minute // after each change: more than HoldDown
)

func simulate(t *testing.T, p simParams) simReport {
	s := newSim(t, p)
	rep := simReport{n: p.n, knows: "all"}
	if p.bootstrap > 0 {
		rep.knows = fmt.Sprint(p.bootstrap)
	}
	for range p.n {
		n := s.newNode()
		if p.bootstrap == 0 {
			s.present[n.id] = true
		}
	}
	for _, n := range s.nodes {
		know := s.randomUp(p.bootstrap, n.id) // up so far: a partial list
		if p.bootstrap == 0 {
			know = sortedKeys(s.present)
		}
		s.start(n, know)
	}
	// Cold start: until the ring is right, then until links stop changing.
	for rep.ringOK == 0 && s.now < simColdMax {
		s.run(s.now + time.Second)
		if s.ringCorrect() {
			rep.ringOK = s.now
		}
	}
	if rep.ringOK == 0 {
		t.Fatalf("n=%d knows=%s: ring not correct after %v", p.n, rep.knows, simColdMax)
	}
	for s.now-s.changed < simQuietSpan && s.now < simColdMax+simQuietSpan {
		s.run(s.now + time.Second)
	}
	rep.quiet = s.changed
	rep.cold = float64(s.count.control()) / float64(p.n)
	rep.coldRV = float64(s.count.rendezvous) / float64(p.n)
	s.checkSettled(t)

	// At rest.
	c0 := s.count
	s.run(s.now + simRest)
	c := s.count.sub(c0)
	rep.rest = float64(c.control()+c.refresh) / float64(p.n) / simRest.Minutes()
	if c.linkUps+c.linkDowns > 0 {
		t.Errorf("n=%d knows=%s: %d link changes at rest", p.n, rep.knows, c.linkUps+c.linkDowns)
	}
	s.measureRoutes(t, &rep)

	// Membership changes, one at a time.
	change := func(do func()) (msgs, rdv float64, worst time.Duration) {
		for range simChanges {
			c0, t0 := s.count, s.now
			do()
			var repair time.Duration
			for s.now-t0 < simWindow {
				s.run(s.now + time.Second)
				if repair == 0 && s.ringCorrect() {
					repair = s.now - t0
				}
			}
			if repair == 0 {
				t.Fatalf("n=%d knows=%s: ring not repaired %v after a change", p.n, rep.knows, simWindow)
			}
			c := s.count.sub(c0)
			msgs += float64(c.control()) / simChanges
			rdv += float64(c.rendezvous) / simChanges
			worst = max(worst, repair)
		}
		return msgs, rdv, worst
	}
	rep.join, rep.joinRV, rep.repair[0] = change(s.join)
	rep.leave, _, rep.repair[1] = change(func() { s.leave(s.byID[s.randomUp(1, nodeid.ID{})[0]]) })
	rep.crash, _, rep.repair[2] = change(func() { s.crash(s.byID[s.randomUp(1, nodeid.ID{})[0]]) })
	rep.loss, _, rep.repair[3] = change(func() { s.loseLink(s.byID[s.randomUp(1, nodeid.ID{})[0]]) })
	s.run(s.now + simQuietSpan)
	s.checkSettled(t)
	return rep
}

// join starts a new node: with presence it knows everyone and everyone
// learns of it (the rendezvous pushes its list); without, it knows a few.
func (s *sim) join() {
	n := s.newNode()
	know := s.randomUp(s.p.bootstrap, n.id)
	if s.p.bootstrap == 0 {
		know = sortedKeys(s.present)
		s.present[n.id] = true
		for _, o := range s.upNodes() {
			o.ring.Learn(n.id, s.wall())
		}
	}
	s.start(n, know)
}

// leave takes n out with a goodbye on every link.
func (s *sim) leave(n *simNode) {
	for _, id := range n.links {
		s.count.bye++
		s.unlink(n, s.byID[id], true)
	}
	n.up = false
	s.unlist(n)
}

// crash takes n out silently; its peers notice after simDetect.
func (s *sim) crash(n *simNode) {
	n.up = false
	s.after(simDetect, func() {
		for _, id := range n.links {
			s.unlink(n, s.byID[id], true)
		}
		s.unlist(n)
	})
}

// loseLink breaks the link from n to its first successor, both alive,
// as a NAT rebinding would: both ends see it fail.
func (s *sim) loseLink(n *simNode) {
	up := s.upNodes()
	i := slices.Index(up, n)
	s.unlink(n, up[(i+1)%len(up)], true)
}

// unlist removes n from the rendezvous's list, and so from every view.
func (s *sim) unlist(n *simNode) {
	if s.p.bootstrap == 0 {
		delete(s.present, n.id)
		for _, o := range s.upNodes() {
			o.ring.Forget(n.id)
		}
	}
}

// ringCorrect reports whether every node up links to its true successors.
func (s *sim) ringCorrect() bool {
	up := s.upNodes()
	k := min(s.p.successors, len(up)-1)
	for i, n := range up {
		for j := 1; j <= k; j++ {
			if !n.linked[up[(i+j)%len(up)].id] {
				return false
			}
		}
	}
	return true
}

// checkSettled checks that every node's view agrees with the truth and
// that nothing it wants is missing.
func (s *sim) checkSettled(t *testing.T) {
	t.Helper()
	up := s.upNodes()
	k := min(s.p.successors, len(up)-1)
	for i, n := range up {
		succ, _ := n.ring.Desired(s.wall())
		want := make([]nodeid.ID, k)
		for j := range k {
			want[j] = up[(i+j+1)%len(up)].id
		}
		if !slices.Equal(succ, want) {
			t.Fatalf("node %s: successors %v, want %v", n.id.Short(), shorts(succ), shorts(want))
		}
		if a := n.ring.Tick(s.wall()); len(a.Connect)+len(a.Close) > 0 {
			t.Fatalf("node %s: settled but Tick says %+v", n.id.Short(), a)
		}
	}
}

func shorts(ids []nodeid.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Short()
	}
	return out
}
