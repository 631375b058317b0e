package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/overlay/control"
)

// join opens a receiver in n's namespace (lab.Join), closed when the test ends.
func join(t *testing.T, n *lab.Node, group string, port int, source string) *lab.Receiver {
	t.Helper()
	r, err := lab.Join(n.Host, "ipop0", group, port, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// send sends count datagrams to group:port from n's TAP (lab.Send).
func send(t *testing.T, n *lab.Node, group string, port, count int, interval time.Duration) {
	t.Helper()
	if err := lab.Send(n.Host, "ipop0", group, port, count, interval); err != nil {
		t.Fatal(err)
	}
}

// groupsJSON is `ipopctl groups --json` on n, decoded.
func groupsJSON(t *testing.T, n *lab.Node) control.Groups {
	t.Helper()
	out, err := n.Ctl("groups", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var gs control.Groups
	if err := jsonUnmarshal(out, &gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

func groupOn(t *testing.T, n *lab.Node, group string) control.GroupStatus {
	t.Helper()
	for _, g := range groupsJSON(t, n).Groups {
		if g.Group == group {
			return g
		}
	}
	return control.GroupStatus{Group: group}
}

func subscribers(g control.GroupStatus) []string {
	var names []string
	for _, s := range g.Remote {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// waitSubscribers waits until n's table lists exactly the named nodes for group.
func waitSubscribers(t *testing.T, n *lab.Node, group string, want ...string) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s sees %v subscribed to %s", n.Name, want, group), func() error {
		got := subscribers(groupOn(t, n, group))
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("subscribers %v", got)
		}
		return nil
	})
}

// fourNodes is an overlay of four public nodes, all linked.
func fourNodes(t *testing.T) (*overlay, []*lab.Node) {
	o := newOverlay(t)
	var ns []*lab.Node
	names := []string{"alpha", "beta", "gamma", "delta"}
	for i, name := range names {
		ns = append(ns, o.node(t, o.public(t, name[:1]), name, i+1))
	}
	for i, n := range ns {
		var others []string
		for j, m := range names {
			if j != i {
				others = append(others, m)
			}
		}
		if _, err := n.WaitUp(30*time.Second, others...); err != nil {
			t.Fatal(err)
		}
	}
	return o, ns
}

// TestMulticastOnlyToSubscribers: receivers on alpha and beta join
// 239.1.1.1, gamma sends; both receive every datagram, and delta, which did
// not subscribe, gets no frame of the group on its TAP (its counters and a
// capture say so). Then the same with an IPv6 group over MLDv2.
func TestMulticastOnlyToSubscribers(t *testing.T) {
	_, ns := fourNodes(t)
	alpha, beta, gamma, delta := ns[0], ns[1], ns[2], ns[3]
	capture, err := delta.Host.Start("tcpdump", nil, "tcpdump", "-n", "-l", "-i", "ipop0", "udp and (dst host 239.1.1.1 or dst host ff15::1:1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ group string }{{"239.1.1.1"}, {"ff15::1:1"}} {
		ra := join(t, alpha, c.group, 5000, "")
		rb := join(t, beta, c.group, 5000, "")
		waitSubscribers(t, gamma, c.group, "alpha", "beta")
		send(t, gamma, c.group, 5000, 200, 2*time.Millisecond)
		eventually(t, 5*time.Second, "both receivers got all 200 on "+c.group, func() error {
			if ra.Got() != 200 || rb.Got() != 200 {
				return fmt.Errorf("alpha %d, beta %d", ra.Got(), rb.Got())
			}
			return nil
		})
		if g := groupOn(t, gamma, c.group); g.FwdFrames != 400 {
			t.Errorf("gamma forwarded %d frames of %s, want 400 (200 to each of 2 subscribers, once)", g.FwdFrames, c.group)
		}
		if g := groupOn(t, delta, c.group); g.DlvFrames != 0 {
			t.Errorf("delta delivered %d frames of %s to its TAP", g.DlvFrames, c.group)
		}
	}
	time.Sleep(300 * time.Millisecond)
	capture.Stop()
	if log := capture.Log(); strings.Contains(log, "239.1.1.1") || strings.Contains(log, "ff15::1:1") {
		t.Errorf("delta's TAP saw the groups' frames:\n%s", log)
	}
}

// TestMulticastSourceSpecific: an IGMPv3 source-specific join receives only
// from the allowed source, and the other source's node sends it nothing.
func TestMulticastSourceSpecific(t *testing.T) {
	_, ns := fourNodes(t)
	alpha, gamma, delta := ns[0], ns[2], ns[3]
	r := join(t, alpha, "232.1.1.1", 5001, gamma.Addr4())
	waitSubscribers(t, gamma, "232.1.1.1", "alpha")
	waitSubscribers(t, delta, "232.1.1.1", "alpha")
	send(t, gamma, "232.1.1.1", 5001, 100, 2*time.Millisecond)
	send(t, delta, "232.1.1.1", 5001, 100, 2*time.Millisecond)
	time.Sleep(time.Second)
	if got, bad := r.From(gamma.Addr4()), r.From(delta.Addr4()); got != 100 || bad != 0 {
		t.Errorf("received %d from the allowed source (want 100), %d from the other (want 0)", got, bad)
	}
	if g := groupOn(t, delta, "232.1.1.1"); g.FwdFrames != 0 {
		t.Errorf("delta forwarded %d frames its source is not allowed to send", g.FwdFrames)
	}
}

// TestMulticastOlderHosts: hosts forced to IGMPv2 and IGMPv1 join and receive.
func TestMulticastOlderHosts(t *testing.T) {
	_, ns := fourNodes(t)
	for i, v := range []string{"2", "1"} {
		n := ns[i]
		if _, err := n.Host.Run("sysctl", "-w", "net.ipv4.conf.ipop0.force_igmp_version="+v); err != nil {
			t.Fatal(err)
		}
		group := fmt.Sprintf("239.9.9.%d", i+1)
		r := join(t, n, group, 5002, "")
		waitSubscribers(t, ns[2], group, n.Name)
		send(t, ns[2], group, 5002, 50, 2*time.Millisecond)
		eventually(t, 5*time.Second, "IGMPv"+v+" host receives", func() error {
			if r.Got() != 50 {
				return fmt.Errorf("got %d of 50", r.Got())
			}
			return nil
		})
		if g := groupOn(t, n, group); g.Local == nil || g.Local.Compat != map[string]int{"2": 2, "1": 1}[v] {
			t.Errorf("IGMPv%s host: local state %+v", v, g.Local)
		}
	}
}

// TestMulticastLeaveAndKill: a receiver that leaves stops its node's stream
// within last-member-query time + 1 s; a killed receiver node's memberships
// go with its link and the sender stops sending to it.
func TestMulticastLeaveAndKill(t *testing.T) {
	_, ns := fourNodes(t)
	alpha, beta, gamma := ns[0], ns[1], ns[2]
	ra := join(t, alpha, "239.5.5.5", 5003, "")
	join(t, beta, "239.5.5.5", 5003, "")
	waitSubscribers(t, gamma, "239.5.5.5", "alpha", "beta")

	// Default igmp: robustness 2 × last_member_query_interval 1s.
	left := time.Now()
	ra.Close()
	eventually(t, 3*time.Second, "alpha's stream stops after its receiver left", func() error {
		if got := subscribers(groupOn(t, gamma, "239.5.5.5")); strings.Join(got, ",") != "beta" {
			return fmt.Errorf("gamma still sends to %v", got)
		}
		return nil
	})
	t.Logf("leave: gamma stopped sending to alpha %s after the receiver left", time.Since(left).Round(100*time.Millisecond))
	before := groupOn(t, alpha, "239.5.5.5").DlvFrames
	send(t, gamma, "239.5.5.5", 5003, 50, 2*time.Millisecond)
	if after := groupOn(t, alpha, "239.5.5.5").DlvFrames; after != before {
		t.Errorf("alpha still delivered %d frames after leaving", after-before)
	}

	killed := time.Now()
	beta.Proc.Kill()
	eventually(t, 15*time.Second, "gamma drops the killed node's membership", func() error {
		if got := subscribers(groupOn(t, gamma, "239.5.5.5")); len(got) != 0 {
			return fmt.Errorf("gamma still sends to %v", got)
		}
		return nil
	})
	t.Logf("kill: gamma stopped sending to beta %s after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	fwd := groupOn(t, gamma, "239.5.5.5").FwdFrames
	send(t, gamma, "239.5.5.5", 5003, 50, 2*time.Millisecond)
	if after := groupOn(t, gamma, "239.5.5.5").FwdFrames; after != fwd {
		t.Errorf("gamma forwarded %d frames with no subscriber left", after-fwd)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestDeadNodeForgottenEverywhere: a killed node's memberships and hosts
// are gone within 10 s at a node that had no link to it: the nodes linked
// to it notice (link liveness), find it silent, and tell the others, who
// ask it themselves before they forget it.
func TestDeadNodeForgottenEverywhere(t *testing.T) {
	o := newOverlay(t)
	var ns []*lab.Node
	for i, name := range []string{"alpha", "beta", "gamma", "delta", "eps"} {
		n, err := o.l.Start(o.public(t, name[:1]), lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1),
			Rendezvous: o.rv, Config: map[string]any{"ice": map[string]any{"port": 4000},
				"topology": map[string]any{"successors": 1, "chords": 0}}})
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
	}
	victim := ns[0]
	join(t, victim, "239.6.6.6", 5006, "")
	for _, n := range ns[1:] {
		waitSubscribers(t, n, "239.6.6.6", victim.Name)
	}
	// A node with no link to the victim.
	var far *lab.Node
	for _, n := range ns[1:] {
		if state, _ := linkTo(t, n, victim.Name); state != "up" {
			far = n
			break
		}
	}
	if far == nil {
		t.Skip("every node links the victim in this ring order: nothing to show")
	}
	pingOK(t, victim, far.Addr4(), 1) // far learns the victim's host (ARP)
	hasHost := func() bool {
		out, _ := far.Ctl("arp")
		return strings.Contains(out, victim.Addr4()+" ")
	}
	eventually(t, 10*time.Second, far.Name+" knows the victim's host", func() error {
		if !hasHost() {
			return fmt.Errorf("no entry for %s", victim.Addr4())
		}
		return nil
	})
	killed := time.Now()
	victim.Proc.Kill()
	eventually(t, 10*time.Second, far.Name+" forgets the killed node's membership and host", func() error {
		if got := subscribers(groupOn(t, far, "239.6.6.6")); len(got) != 0 {
			return fmt.Errorf("still sends to %v", got)
		}
		if hasHost() {
			return fmt.Errorf("still holds the host %s", victim.Addr4())
		}
		return nil
	})
	t.Logf("%s (no link to the victim) forgot its membership and host %s after SIGKILL", far.Name, time.Since(killed).Round(100*time.Millisecond))
}

// TestRoutedStreamSurvivesHopDeath: a multicast stream from a source to a
// subscriber it has no link to travels through a node between them.
// First that node's underlay drops 30% of packets each way for 5 s: the
// source finds the link losing its probes and routes around it (the
// subscriber loses under a second of the stream, not half of five), and
// back through it once the loss is over. Then that node is SIGKILLed:
// the source hears nothing back from it while it sends and routes around
// it within a second (fast reroute: probes, then the link is suspect),
// long before the link is declared dead (3 s): the subscriber loses under
// a second of the stream.
func TestRoutedStreamSurvivesHopDeath(t *testing.T) {
	o := newOverlay(t)
	var ns []*lab.Node
	byName := map[string]*lab.Node{}
	for i := range 8 {
		name := fmt.Sprintf("n%d", i)
		n, err := o.l.Start(o.public(t, name), lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1),
			Rendezvous: o.rv, Config: map[string]any{"ice": map[string]any{"port": 4000},
				"topology": map[string]any{"successors": 2, "chords": 0}}})
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
		byName[name] = n
	}
	src := ns[0]
	// The ring: src's two successors, and the first node after them,
	// which src has no link to.
	var succ []string
	eventually(t, 30*time.Second, "the ring built around the source", func() error {
		st, err := src.Status()
		if err != nil || st.Ring == nil {
			return fmt.Errorf("status: %v", err)
		}
		r := st.Ring
		succ = succ[:0]
		for _, s := range r.Successors {
			if s.Up {
				succ = append(succ, s.Name)
			}
		}
		if len(succ) != 2 {
			return fmt.Errorf("successors %+v", r.Successors)
		}
		return nil
	})
	var dst *lab.Node
	eventually(t, 30*time.Second, "a subscriber two hops on", func() error {
		st, err := byName[succ[1]].Status()
		if err != nil || st.Ring == nil {
			return fmt.Errorf("status: %v", err)
		}
		r := st.Ring
		for _, s := range r.Successors {
			if s.Up && s.Name != src.Name {
				if state, _ := linkTo(t, src, s.Name); state != "up" {
					dst = byName[s.Name]
					return nil
				}
			}
		}
		return fmt.Errorf("%s's successors %+v", succ[1], r.Successors)
	})
	r := join(t, dst, "239.7.7.7", 5007, "")
	waitSubscribers(t, src, "239.7.7.7", dst.Name)
	stream, err := lab.StartStream(src.Host, "ipop0", "239.7.7.7", 5007, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Stop()
	// The hop: the node src's packets go to, by the counters of all its
	// links (a predecessor can be the nearer way too).
	tx := func() map[string]uint64 {
		p, err := src.Peers()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]uint64{}
		for _, l := range p.Links {
			if l.State == "up" {
				m[l.Name] = l.TxPackets
			}
		}
		return m
	}
	// (Until the ring has settled: while links still come up, the best
	// next hop can change from one second to the next.)
	var hop string
	var carried uint64
	findHop := func() {
		eventually(t, 20*time.Second, "one link carrying the stream", func() error {
			before := tx()
			time.Sleep(time.Second)
			after := tx()
			hop, carried = "", 0
			var others []string
			for name, n := range after {
				d := n - before[name]
				switch {
				case d >= 45 && hop == "":
					hop, carried = name, d
				case d > 10:
					others = append(others, fmt.Sprintf("%s %d", name, d))
				}
			}
			if hop == "" || len(others) > 0 {
				return fmt.Errorf("packets in a second: %v → %v", before, after)
			}
			return nil
		})
		t.Logf("%s → %s goes through %s (%d packets in 1 s)", src.Name, dst.Name, hop, carried)
		if state, _ := linkTo(t, src, dst.Name); state == "up" {
			t.Fatalf("%s linked %s directly meanwhile: the test shows nothing", src.Name, dst.Name)
		}
	}
	lostBetween := func(from, to time.Time) int {
		lost := 0
		for seq, at := range stream.Sent() {
			if !at.Before(from) && at.Before(to) {
				if _, ok := r.Arrived(seq); !ok {
					lost++
				}
			}
		}
		return lost
	}
	findHop()
	lossy := routedAroundLossy(t, src)
	rule := []string{"-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"}
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if out, err := byName[hop].Host.Run(append([]string{"iptables", "-w", "-I", chain}, rule...)...); err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
	}
	lossAt := time.Now()
	time.Sleep(4 * time.Second)
	var shown string
	if p, err := src.Peers(); err == nil {
		for _, l := range p.Links {
			if l.Name == hop {
				shown = fmt.Sprintf("%s: %d/16 probes lost, routed around: %q", hop, l.ProbesLost, l.RoutedAround)
			}
		}
	}
	time.Sleep(time.Second)
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		byName[hop].Host.Run(append([]string{"iptables", "-w", "-D", chain}, rule...)...)
	}
	time.Sleep(3 * time.Second)
	lost := lostBetween(lossAt, lossAt.Add(7*time.Second))
	t.Logf("30%% loss at %s for 5 s: %s lost %d datagrams (%s of the stream); at %s 4 s in: %s; routed_around_lossy %d",
		hop, dst.Name, lost, time.Duration(lost)*20*time.Millisecond, src.Name, shown, routedAroundLossy(t, src)-lossy)
	if d := time.Duration(lost) * 20 * time.Millisecond; d >= time.Second {
		t.Errorf("the subscriber lost %s of the stream while the hop lost 30%%, want under 1s", d)
	}
	if routedAroundLossy(t, src) == lossy || !strings.Contains(shown, `"lossy"`) {
		t.Errorf("%s never routed around the lossy %s (peers showed %s)", src.Name, hop, shown)
	}

	findHop()
	around := routedAround(t, src)
	killed := time.Now()
	byName[hop].Proc.Kill()
	time.Sleep(5 * time.Second)
	lost = lostBetween(killed, killed.Add(4*time.Second))
	t.Logf("%s SIGKILLed: %s lost %d datagrams (%s of the stream); routed_around at %s: %d", hop, dst.Name, lost,
		time.Duration(lost)*20*time.Millisecond, src.Name, routedAround(t, src))
	if d := time.Duration(lost) * 20 * time.Millisecond; d >= time.Second {
		t.Errorf("the subscriber lost %s of the stream when the hop died, want under 1s", d)
	}
	if routedAround(t, src) == around {
		t.Errorf("%s never routed around %s", src.Name, hop)
	}
}

// routedAroundLossy is n's routed_around_lossy counter (lossy links it
// routed around).
func routedAroundLossy(t *testing.T, n *lab.Node) uint64 {
	return routedCounter(t, n, "routed_around_lossy")
}

// routedAround is n's routed_around counter (links it routed around).
func routedAround(t *testing.T, n *lab.Node) uint64 { return routedCounter(t, n, "routed_around") }

// routedCounter is one of n's routed counters (ipopctl peers).
func routedCounter(t *testing.T, n *lab.Node, name string) uint64 {
	t.Helper()
	p, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return p.Routed[name]
}

// groupsOf counts the groups n's table lists node subscribed to, of those
// in want.
func groupsOf(t *testing.T, n *lab.Node, node string, want []netip.Addr) int {
	t.Helper()
	gs := groupsJSON(t, n)
	in := map[string]bool{}
	for _, g := range want {
		in[g.String()] = true
	}
	count := 0
	for _, g := range gs.Groups {
		if in[g.Group] && slices.Contains(subscribers(g), node) {
			count++
		}
	}
	return count
}

// TestManyGroups: an application on alpha joins 2,000 groups, more than
// one membership message carries (1,024; a node's membership was once
// capped there, the rest silently dropped). beta learns every one from
// alpha's changes, and gamma, which starts afterwards, from alpha's full
// state, which now goes in parts; a datagram to each group from either
// reaches alpha's socket once.
func TestManyGroups(t *testing.T) {
	o := newOverlay(t)
	alpha, err := o.l.Start(o.public(t, "a"), lab.Spec{Name: "alpha", Address: "10.254.0.1/16", Rendezvous: o.rv,
		Config: map[string]any{"ice": map[string]any{"port": 4000}, "metrics": map[string]any{"listen": "127.0.0.1:9464"}}})
	if err != nil {
		t.Fatal(err)
	}
	beta := o.node(t, o.public(t, "b"), "beta", 2)
	for _, n := range []*lab.Node{alpha, beta} {
		if _, err := n.WaitUp(30*time.Second, map[string]string{"alpha": "beta", "beta": "alpha"}[n.Name]); err != nil {
			t.Fatal(err)
		}
	}
	const count, port = 2000, 5020
	var groups []netip.Addr
	for i := range count {
		groups = append(groups, netip.AddrFrom4([4]byte{239, 20, byte(i >> 8), byte(i)}))
	}
	start := time.Now()
	rx, err := lab.JoinGroups(alpha.Host, "ipop0", groups, port)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	known := func(n *lab.Node) {
		t.Helper()
		eventually(t, 60*time.Second, n.Name+" knows alpha in every group", func() error {
			if got := groupsOf(t, n, "alpha", groups); got != count {
				return fmt.Errorf("%d of %d groups", got, count)
			}
			return nil
		})
		t.Logf("%s knows alpha in all %d groups after %s", n.Name, count, time.Since(start).Round(time.Millisecond))
	}
	reaches := func(n *lab.Node) {
		t.Helper()
		if err := lab.SendGroups(n.Host, "ipop0", groups, port, n.Name, 500*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		missing, dups := rx.Missing(groups, n.Name)
		if len(missing) > 0 || dups > 0 {
			t.Errorf("from %s: %d of %d groups got nothing (first %v), %d twice", n.Name, len(missing), count, missing[:min(len(missing), 5)], dups)
		}
	}
	known(beta)
	reaches(beta)

	start = time.Now()
	gamma := o.node(t, o.public(t, "c"), "gamma", 3)
	if _, err := gamma.WaitUp(30*time.Second, "alpha", "beta"); err != nil {
		t.Fatal(err)
	}
	known(gamma)
	reaches(gamma)
	for _, n := range []*lab.Node{alpha, beta, gamma} {
		p, err := n.Peers()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"membership_oversize", "membership_bad_parts", "membership_table_full"} {
			if p.Drops[k] != 0 {
				t.Errorf("%s: %s %d", n.Name, k, p.Drops[k])
			}
		}
	}
	m, err := lab.Scrape(alpha.Host, "127.0.0.1:9464")
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"querier_full", "groups_refused", "filters_widened"} {
		if v := m[`ipopd_mcast_local_limit_total{what="`+what+`"}`]; v != 0 {
			t.Errorf("alpha: %s %v", what, v)
		}
	}
}
