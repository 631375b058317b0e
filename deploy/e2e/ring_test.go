package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/overlay/control"
)

// Ring sizing for the six-node tests: one successor and one chord, so
// that a ring of six is far from a full mesh (each node wants two links;
// with its predecessor's and others' chords it ends up with two to four).
const (
	ringSuccessors = 1
	ringChords     = 1
	odIdle         = 5 * time.Second
)

// ringNodes starts a rendezvous and n public nodes with a small ring and
// a 1 Mbit/s on-demand threshold, and waits until the ring is at rest.
func ringNodes(t *testing.T, n int) (*overlay, []*lab.Node) {
	t.Helper()
	// No TURN: the nodes share a net, and a link that ICE happened to put
	// on a relay would die with the rendezvous when the test stops it.
	o := newOverlayTURN(t, false)
	nodes := make([]*lab.Node, n)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		var err error
		nodes[i], err = o.l.Start(o.public(t, name), lab.Spec{
			Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1), Address6: fmt.Sprintf("fd54::%d/64", i+1),
			Rendezvous: o.rv, Config: map[string]any{
				"ice": map[string]any{"port": 4000},
				"topology": map[string]any{"successors": ringSuccessors, "chords": ringChords,
					"on_demand": map[string]any{"threshold": "1Mbit", "idle": odIdle.String(), "max_links": 4}},
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitRing(t, nodes, 60*time.Second)
	return o, nodes
}

// waitRing waits until every node's ring links (successors and chords)
// are up and no link is being set up, twice in a row a second apart.
func waitRing(t *testing.T, nodes []*lab.Node, timeout time.Duration) {
	t.Helper()
	waitRingOf(t, nodes, ringSuccessors, timeout)
}

// waitRingOf is waitRing for nodes with successors ring successors.
func waitRingOf(t *testing.T, nodes []*lab.Node, successors int, timeout time.Duration) {
	t.Helper()
	settled := 0
	eventually(t, timeout, "ring at rest", func() error {
		for _, n := range nodes {
			st, err := n.Status()
			if err != nil {
				settled = 0
				return err
			}
			r := st.Ring
			if r == nil || len(r.Successors) != min(successors, len(nodes)-1) {
				settled = 0
				return fmt.Errorf("%s: ring %+v", n.Name, r)
			}
			for _, rn := range append(slices.Clone(r.Successors), r.Chords...) {
				if !rn.Up {
					settled = 0
					return fmt.Errorf("%s: no link to ring neighbour %s", n.Name, rn.Name)
				}
			}
			p, err := n.Peers()
			if err != nil {
				settled = 0
				return err
			}
			for _, l := range p.Links {
				if l.State != "up" && l.State != "down" {
					settled = 0
					return fmt.Errorf("%s: link to %s %s", n.Name, l.Name, l.State)
				}
			}
		}
		if settled++; settled < 2 {
			time.Sleep(time.Second)
			return fmt.Errorf("settling")
		}
		return nil
	})
}

// upLinks returns the names of n's peers with a link up, and their roles.
func upLinks(t *testing.T, n *lab.Node) map[string]control.PeerStatus {
	t.Helper()
	p, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]control.PeerStatus{}
	for _, l := range p.Links {
		if l.State == "up" {
			out[l.Name] = l
		}
	}
	return out
}

func routed(t *testing.T, n *lab.Node) map[string]uint64 {
	t.Helper()
	p, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return p.Routed
}

// checkAtRest: every node keeps at most successors + chords links for
// its own ring roles and no on-demand link, and the overlay is not a full
// mesh. A node's total can be higher: links are shared, and its
// predecessor's successor link and other nodes' chords to it are theirs
// (role "peer"). It returns a pair with no link between them.
func checkAtRest(t *testing.T, nodes []*lab.Node) (src, dst *lab.Node) {
	t.Helper()
	total := 0
	for _, n := range nodes {
		links := upLinks(t, n)
		own := 0
		for _, l := range links {
			switch l.Role {
			case "successor", "chord":
				own++
			case "on-demand":
				t.Errorf("%s has an on-demand link to %s at rest", n.Name, l.Name)
			}
		}
		total += len(links)
		names := make([]string, 0, len(links))
		for name, l := range links {
			names = append(names, name+"("+l.Role+")")
		}
		slices.Sort(names)
		t.Logf("at rest: %s has %d links: %v", n.Name, len(links), names)
		if own > ringSuccessors+ringChords {
			t.Errorf("%s keeps %d links for its ring roles, more than successors+chords = %d", n.Name, own, ringSuccessors+ringChords)
		}
	}
	pairs := len(nodes) * (len(nodes) - 1) / 2
	t.Logf("at rest: %d links among %d nodes (a full mesh has %d)", total/2, len(nodes), pairs)
	if total/2 >= pairs {
		t.Fatalf("the overlay is a full mesh")
	}
	for _, a := range nodes {
		links := upLinks(t, a)
		for _, b := range nodes {
			if a != b && links[b.Name].Name == "" {
				return a, b
			}
		}
	}
	t.Fatal("no unlinked pair")
	return nil, nil
}

var iperfLossRe = regexp.MustCompile(`(\d+)/\s*(\d+) \(`)

// onDemandCycle streams from src to dst above the threshold and checks
// that an on-demand link appears, the stream moves onto it, and (when
// waitIdle) that the link goes once the stream stops. It returns the time
// from the threshold crossing (as src recorded it) to traffic on the link.
func onDemandCycle(t *testing.T, src, dst *lab.Node, waitIdle bool) time.Duration {
	t.Helper()
	pingOK(t, src, dst.Addr4(), 3) // routed through the ring
	if r := routed(t, src); r["sent"] == 0 {
		t.Errorf("%s: pings to unlinked %s were not routed: %v", src.Name, dst.Name, r)
	}
	streamFor := 12 * time.Second
	out := make(chan string, 1)
	go func() {
		o, _ := src.Host.Run("iperf", "-c", dst.Addr4(), "-u", "-b", "4M", "-t", fmt.Sprint(int(streamFor.Seconds())), "-i", "1")
		out <- o
	}()

	// The link appears: src marks it on-demand and says when it wanted it.
	var wanted, carrying time.Time
	var link control.PeerStatus
	eventually(t, streamFor, "on-demand link carries the stream", func() error {
		st, err := src.Status()
		if err != nil {
			return err
		}
		if wanted.IsZero() {
			for _, rn := range st.Ring.OnDemand {
				if rn.Name == dst.Name {
					wanted = rn.Since
				}
			}
		}
		l, ok := upLinks(t, src)[dst.Name]
		if !ok || l.Role != "on-demand" {
			return fmt.Errorf("no on-demand link (wanted since %v)", wanted)
		}
		if l.TxBytes < 100_000 {
			return fmt.Errorf("link up, %d bytes sent on it", l.TxBytes)
		}
		carrying, link = time.Now(), l
		return nil
	})
	took := carrying.Sub(wanted)
	t.Logf("%s -> %s: on-demand link wanted at %s, carrying the stream %s later (polled every 100 ms), path %s",
		src.Name, dst.Name, wanted.Format("15:04:05.000"), took.Round(10*time.Millisecond), link.Path)

	// The stream has moved: src sends (almost) nothing routed toward dst.
	before := routed(t, src)["sent"]
	tx := upLinks(t, src)[dst.Name].TxBytes
	time.Sleep(2 * time.Second)
	after := routed(t, src)["sent"]
	tx2 := upLinks(t, src)[dst.Name].TxBytes
	t.Logf("over 2 s on the direct link: %d bytes sent; routed packets sent by %s: %d", tx2-tx, src.Name, after-before)
	if after-before > 20 || tx2-tx < 500_000 {
		t.Errorf("stream did not move onto the direct link: %d routed packets, %d bytes on the link in 2 s", after-before, tx2-tx)
	}

	o := <-out
	if m := iperfLossRe.FindAllStringSubmatch(o, -1); m != nil {
		last := m[len(m)-1]
		lost, _ := strconv.Atoi(last[1])
		total, _ := strconv.Atoi(last[2])
		t.Logf("iperf %s -> %s, 4 Mbit/s for %s: %d of %d datagrams lost across the switch to the direct link", src.Name, dst.Name, streamFor, lost, total)
		if total == 0 || lost*100 > total {
			t.Errorf("stream lost %d of %d datagrams (more than 1%%)\n%s", lost, total, o)
		}
	} else {
		t.Errorf("no iperf server report:\n%s", o)
	}
	if !waitIdle {
		return took
	}
	stopped := time.Now()
	eventually(t, odIdle+30*time.Second, "on-demand link closed after the idle time", func() error {
		if l, ok := upLinks(t, src)[dst.Name]; ok {
			return fmt.Errorf("link still %s (%s)", l.State, l.Role)
		}
		return nil
	})
	t.Logf("on-demand link closed %s after the stream stopped (idle %s + 5 s rate window)", time.Since(stopped).Round(100*time.Millisecond), odIdle)
	pingOK(t, src, dst.Addr4(), 3) // routed again
	return took
}

// TestRingSixNodes: six nodes form a ring with few links per node; a
// stream above the threshold to an unlinked node gets an on-demand link,
// moves onto it and loses it after the idle time; with the rendezvous
// stopped an on-demand link still forms (signaling through the overlay);
// a node leaves and the ring repairs, every remaining pair pings.
func TestRingSixNodes(t *testing.T) {
	o, nodes := ringNodes(t, 6)
	src, dst := checkAtRest(t, nodes)
	if _, err := dst.Host.Start("iperf-server", nil, "iperf", "-s", "-u", "-B", dst.Addr4()); err != nil {
		t.Fatal(err)
	}

	took := onDemandCycle(t, src, dst, true)
	t.Logf("with the rendezvous: threshold to traffic on the new link %s", took.Round(10*time.Millisecond))

	if err := o.rv.Proc.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "nodes notice the rendezvous is gone", func() error {
		for _, n := range nodes {
			if p, _ := n.Peers(); p == nil || p.Rendezvous != "" {
				return fmt.Errorf("%s still connected", n.Name)
			}
		}
		return nil
	})
	took = onDemandCycle(t, src, dst, false)
	t.Logf("without the rendezvous: threshold to traffic on the new link %s", took.Round(10*time.Millisecond))

	// A node leaves (not src or dst): the ring repairs without the
	// rendezvous, and every remaining pair pings.
	var leaver *lab.Node
	var rest []*lab.Node
	for _, n := range nodes {
		if leaver == nil && n != src && n != dst {
			leaver = n
			continue
		}
		rest = append(rest, n)
	}
	left := time.Now()
	if err := leaver.Proc.Stop(); err != nil {
		t.Fatal(err)
	}
	waitRing(t, rest, 60*time.Second)
	for _, n := range rest {
		st, err := n.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, rn := range append(st.Ring.Successors, st.Ring.Chords...) {
			if rn.Name == leaver.Name {
				t.Errorf("%s still has %s in its ring", n.Name, leaver.Name)
			}
		}
	}
	t.Logf("%s left; ring repaired in %s", leaver.Name, time.Since(left).Round(100*time.Millisecond))
	// Right after the repair a pair's first packets may still find a link
	// or a neighbour entry in flux: each pair gets 10 s to answer, and
	// the pairs that needed more than one try are reported.
	var retried []string
	for _, a := range rest {
		for _, b := range rest {
			if a == b {
				continue
			}
			tries := 0
			eventually(t, 10*time.Second, a.Name+" pings "+b.Name, func() error {
				tries++
				out, err := a.Ping(b.Addr4(), 2)
				if m := lossRe.FindStringSubmatch(out); err != nil || m == nil || m[2] == "0" {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			if tries > 1 {
				retried = append(retried, fmt.Sprintf("%s->%s (%d tries)", a.Name, b.Name, tries))
			}
		}
	}
	t.Logf("all %d pairs of the remaining %d nodes ping; needed retries: %v", len(rest)*(len(rest)-1), len(rest), retried)
}
