package topology

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The distribution trees (tree.go) measured on a settled ring of 1,000
// and 10,000 nodes: the ring is built at once as converged nodes would
// have it (successors 2, chords 2 by the same draws as Ring), each node
// runs the real Trees on the real Routes, and tree messages are
// delivered in order, one message per overlay hop (an adopted edge's
// messages are routed).

type treeSim struct {
	ids    []nodeid.ID // ascending
	index  map[nodeid.ID]int
	routes []*Routes
	trees  []*Trees
	now    time.Time
	msgs   int // overlay hops of tree messages
	strays int // frames that came from a node that is not a tree neighbour
	rng    *rand.Rand
}

// staticLinks returns each node's links on the converged ring of ids.
func staticLinks(ids []nodeid.ID, successors, chords int) [][]nodeid.ID {
	n := len(ids)
	links := make([]map[nodeid.ID]bool, n)
	for i := range links {
		links[i] = map[nodeid.ID]bool{}
	}
	add := func(i, j int) {
		if i != j {
			links[i][ids[j]], links[j][ids[i]] = true, true
		}
	}
	for i, id := range ids {
		var succ []nodeid.ID
		for k := 1; k <= successors && k < n; k++ {
			add(i, (i+k)%n)
			succ = append(succ, ids[(i+k)%n])
		}
		var chosen []nodeid.ID
		for _, d := range newDraws(id, chords) {
			if len(chosen) == chords {
				break
			}
			c, _ := atOrAfter(ids, load(id).add(d))
			if c == id || slices.Contains(succ, c) || slices.Contains(chosen, c) {
				continue
			}
			chosen = append(chosen, c)
			j, _ := slices.BinarySearchFunc(ids, c, nodeid.ID.Compare)
			add(i, j)
		}
	}
	out := make([][]nodeid.ID, n)
	for i := range links {
		out[i] = sortedKeys(links[i])
	}
	return out
}

func newTreeSim(n, fanout int, seed uint64) *treeSim {
	s := &treeSim{index: map[nodeid.ID]int{}, now: epoch0, rng: rand.New(rand.NewPCG(seed, 7))}
	for range n {
		var id nodeid.ID
		for i := range id {
			id[i] = byte(s.rng.UintN(256))
		}
		s.ids = append(s.ids, id)
	}
	slices.SortFunc(s.ids, nodeid.ID.Compare)
	for i, id := range s.ids {
		s.index[id] = i
		s.trees = append(s.trees, NewTrees(id, fanout))
	}
	s.rebuild(nil)
	return s
}

// rebuild makes the ring of the nodes not in dead, as converged.
func (s *treeSim) rebuild(dead map[nodeid.ID]bool) {
	var live []nodeid.ID
	for _, id := range s.ids {
		if !dead[id] {
			live = append(live, id)
		}
	}
	links := staticLinks(live, 2, 2)
	by := map[nodeid.ID][]nodeid.ID{}
	for i, id := range live {
		by[id] = links[i]
	}
	s.routes = make([]*Routes, len(s.ids))
	for i, id := range s.ids {
		if dead[id] {
			continue
		}
		var theirs [][]nodeid.ID
		for _, l := range by[id] {
			theirs = append(theirs, by[l])
		}
		s.routes[i] = NewRoutes(id, by[id], theirs)
	}
}

// hops is how many overlay hops a message from a to b takes.
func (s *treeSim) hops(a, b nodeid.ID) int {
	h := 0
	for at := a; at != b; h++ {
		rt := s.routes[s.index[at]]
		if rt.Linked(b) {
			return h + 1
		}
		next, _, ok := rt.Route(b)
		if !ok || h > HopLimit {
			return math.MaxInt32 // unreachable: counted as lost
		}
		at = next
	}
	return h
}

// deliver runs every message until none is left; from sent out.
func (s *treeSim) deliver(from nodeid.ID, out []TreeSend) {
	type item struct {
		from nodeid.ID
		TreeSend
	}
	var q []item
	for _, o := range out {
		q = append(q, item{from, o})
	}
	for len(q) > 0 {
		it := q[0]
		q = q[1:]
		i := s.index[it.To]
		if s.routes[i] == nil {
			continue // dead
		}
		s.msgs += min(s.hops(it.from, it.To), HopLimit)
		for _, o := range s.trees[i].Receive(s.routes[i], it.from, &it.Msg, s.now) {
			q = append(q, item{it.To, o})
		}
	}
}

func (s *treeSim) setLocal(id nodeid.ID, g netip.Addr, f filter.Filter) {
	i := s.index[id]
	s.deliver(id, s.trees[i].SetLocal(s.routes[i], g, f, s.now))
}

func (s *treeSim) tickAll() {
	for i, id := range s.ids {
		if s.routes[i] != nil {
			s.deliver(id, s.trees[i].Tick(s.routes[i], s.now))
		}
	}
}

// frame sends one frame of g from source node src along the tree (off
// the tree: routed toward the key until a tree node takes it) and
// returns each node's copies and delay in overlay hops, the copies each
// node sent, and the stress: copies per overlay link crossed.
func (s *treeSim) frame(src nodeid.ID, g netip.Addr, source netip.Addr) (got map[nodeid.ID]int, delay map[nodeid.ID]int, sent map[nodeid.ID]int, stress map[[2]nodeid.ID]int) {
	got, delay, sent, stress = map[nodeid.ID]int{}, map[nodeid.ID]int{}, map[nodeid.ID]int{}, map[[2]nodeid.ID]int{}
	walk := func(a, b nodeid.ID) (int, bool) { // counts stress along the path
		h := 0
		for at := a; at != b; h++ {
			rt := s.routes[s.index[at]]
			next, ok := b, true
			if !rt.Linked(b) {
				next, _, ok = rt.Route(b)
			}
			if !ok || h > HopLimit {
				return h, false // b is dead, or not reached
			}
			stress[[2]nodeid.ID{min2(at, next), max2(at, next)}]++
			at = next
		}
		return h, true
	}
	type hop struct {
		at, from nodeid.ID
		d        int
	}
	key := GroupKey(g)
	start := src
	d0 := 0
	for {
		i := s.index[start]
		if _, on := s.trees[i].groups[g]; on {
			break
		}
		next, ok := s.routes[i].NextHop(key)
		if !ok {
			return // nobody on the tree
		}
		stress[[2]nodeid.ID{min2(start, next), max2(start, next)}]++
		sent[start]++
		start, d0 = next, d0+1
	}
	q := []hop{{start, nodeid.ID{}, d0}} // (off the tree: routed toward the key, taken in with no sender)
	visits := map[nodeid.ID]int{}
	for len(q) > 0 {
		h := q[0]
		q = q[1:]
		if visits[h.at]++; visits[h.at] > 1 {
			got[h.at]++ // a second copy: a cycle or a stale edge
			continue
		}
		i := s.index[h.at]
		outs, local, stray := s.trees[i].Forward(g, source, h.from, nil)
		if stray {
			s.strays++
		}
		if local {
			got[h.at]++
			if _, seen := delay[h.at]; !seen {
				delay[h.at] = h.d
			}
		}
		sent[h.at] += len(outs)
		for _, o := range outs {
			if d, ok := walk(h.at, o); ok {
				q = append(q, hop{o, h.at, h.d + d})
			}
		}
	}
	return got, delay, sent, stress
}

func min2(a, b nodeid.ID) nodeid.ID {
	if a.Compare(b) < 0 {
		return a
	}
	return b
}

func max2(a, b nodeid.ID) nodeid.ID {
	if a.Compare(b) < 0 {
		return b
	}
	return a
}

type treeReport struct {
	n, members, fanout int
	build              float64 // messages per join while building
	join, leave        float64 // messages per change on the built tree
	rest               float64 // tree messages per node per second at rest
	depthMean          float64
	depthMax, sentMax  int
	rdp                float64 // mean tree delay / unicast delay
	stressMean         float64
	stressMax          int
	once               bool // every member got each frame exactly once
	repairMsgs         int
	repaired           bool
	adopted            int
	strays             int
}

func simulateTree(t *testing.T, n, members, fanout int, seed uint64) treeReport {
	s := newTreeSim(n, fanout, seed)
	r := treeReport{n: n, members: members, fanout: fanout}
	g := netip.MustParseAddr("239.1.2.3")
	perm := s.rng.Perm(n)
	subs := []nodeid.ID{}
	for _, k := range perm[:members] {
		subs = append(subs, s.ids[k])
	}
	// Build: members join one by one.
	for _, id := range subs {
		s.setLocal(id, g, filter.Filter{Mode: filter.Exclude})
	}
	r.build = float64(s.msgs) / float64(members)
	// Changes on the built tree: 20 more joins and their leaves.
	var joins, leaves int
	for _, k := range perm[members : members+20] {
		before := s.msgs
		s.setLocal(s.ids[k], g, filter.Filter{Mode: filter.Exclude})
		joins += s.msgs - before
		before = s.msgs
		s.setLocal(s.ids[k], g, filter.Filter{})
		leaves += s.msgs - before
	}
	r.join, r.leave = float64(joins)/20, float64(leaves)/20
	// At rest: one refresh interval.
	before := s.msgs
	s.now = s.now.Add(TreeRefresh)
	s.tickAll()
	r.rest = float64(s.msgs-before) / float64(n) / TreeRefresh.Seconds()
	// The tree's shape and a frame from a member.
	for i := range s.trees {
		if tg := s.trees[i].groups[g]; tg != nil && tg.adopted {
			r.adopted++
		}
	}
	check := func(src nodeid.ID, record bool) (ok bool) {
		got, delay, sent, stress := s.frame(src, g, netip.MustParseAddr("10.0.0.1"))
		ok = true
		for _, m := range subs {
			if m != src && got[m] != 1 {
				ok = false
			}
		}
		if !record {
			return ok
		}
		var ratio float64
		var cnt, dsum int
		for _, m := range subs {
			if m == src {
				continue
			}
			ratio += float64(delay[m]) / float64(s.hops(src, m))
			cnt++
			dsum += delay[m]
			r.depthMax = max(r.depthMax, delay[m])
		}
		r.rdp = ratio / float64(cnt)
		r.depthMean = float64(dsum) / float64(cnt)
		for _, c := range sent {
			r.sentMax = max(r.sentMax, c)
		}
		var ssum int
		for _, c := range stress {
			ssum += c
			r.stressMax = max(r.stressMax, c)
		}
		r.stressMean = float64(ssum) / float64(len(stress))
		return ok
	}
	r.once = check(subs[0], true)
	// Repair: the busiest forwarder that is not a member dies.
	var victim nodeid.ID
	most := -1
	for i, tr := range s.trees {
		tg := tr.groups[g]
		if tg == nil || !tg.local.Empty() || tg.root {
			continue
		}
		if len(tg.children) > most {
			victim, most = s.ids[i], len(tg.children)
		}
	}
	if most >= 0 {
		s.rebuild(map[nodeid.ID]bool{victim: true})
		before := s.msgs
		s.now = s.now.Add(time.Second)
		for i, id := range s.ids { // the gone notice reaches every node
			if s.routes[i] != nil {
				s.deliver(id, s.trees[i].Gone(s.routes[i], victim, s.now))
			}
		}
		s.tickAll()
		r.repairMsgs = s.msgs - before
		r.repaired = check(subs[0], false)
	}
	r.strays = s.strays
	for _, tr := range s.trees { // the bounds' counts are what is held
		if e, by := treeEntries(tr); e != tr.entries || len(by) != len(tr.byChild) {
			t.Fatalf("%s counts %d entries and %d child nodes, holds %d and %d", tr.self.Short(), tr.entries, len(tr.byChild), e, len(by))
		}
	}
	return r
}

// TestSimulateTrees prints the trees' figures (go test -run
// TestSimulateTrees -v ./topology) and checks what must hold: each
// member gets a frame exactly once, before and after a forwarder dies,
// and no node sends more than fanout copies.
func TestSimulateTrees(t *testing.T) {
	type run struct{ n, members, fanout int }
	runs := []run{{1000, 6, 2}, {1000, 100, 8}, {10000, 6, 2}, {10000, 100, 8}, {10000, 1000, 8}}
	if testing.Short() {
		runs = runs[:2]
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "nodes\tmembers\tfanout\tbuild msgs/join\tjoin msgs\tleave msgs\t2·log2 N\trest msgs/node/s\tdelay hops mean/max\tmax copies sent\tRDP\tstress mean/max\tadopted\tonce\trepair msgs\trepaired\t")
	for i, rn := range runs {
		r := simulateTree(t, rn.n, rn.members, rn.fanout, uint64(i+1))
		fmt.Fprintf(w, "%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.4f\t%.1f / %d\t%d\t%.2f\t%.2f / %d\t%d\t%v\t%d\t%v\t\n",
			r.n, r.members, r.fanout, r.build, r.join, r.leave, 2*math.Log2(float64(r.n)), r.rest, r.depthMean, r.depthMax,
			r.sentMax, r.rdp, r.stressMean, r.stressMax, r.adopted, r.once, r.repairMsgs, r.repaired)
		if !r.once || !r.repaired || r.strays > 0 {
			t.Errorf("n=%d members=%d: every member once %v, after a forwarder died %v; %d frames over stale edges", r.n, r.members, r.once, r.repaired, r.strays)
		}
		if r.sentMax > r.fanout {
			t.Errorf("n=%d members=%d: a node sent %d copies of a frame, fanout %d", r.n, r.members, r.sentMax, r.fanout)
		}
	}
	w.Flush()
	t.Logf("successors 2, chords 2; messages in overlay hops (acks included)\n%s", b.String())
}
