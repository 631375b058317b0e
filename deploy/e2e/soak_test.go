package e2e

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// TestChurnSoak: eight nodes (six public, two behind NATs) carry a
// multicast stream from one of them to the seven others, and pings from it
// to each, while every ~20 s something goes wrong: a node is killed and
// restarted 2 s later, a node's underlay drops 30% of packets for 5 s
// (iptables statistic), a NAT forgets its mappings (conntrack flushed), or
// a public node's address is replaced. It reports, per kind of event, the
// affected node's recovery (from the end of the trouble to its next
// datagram and its next ping reply: p50 and max), the datagrams the other
// nodes lost meanwhile, duplicates (must be 0), and each node's goroutines
// and RSS at the start and the end. It fails when a node takes longer
// than soakRecovery to recover, another loses soakOthersLoss of the stream
// or more, or a datagram arrives twice.
//
// The test command runs it for 2 minutes, the group replicated by its
// source; IPOP_SOAK sets the duration (off: skip):
//
//	IPOP_NETNS=1 IPOP_SOAK=30m go test -count=1 -timeout 40m -run TestChurnSoak -v ./deploy/e2e
//
// IPOP_SOAK_SEND=tree sends the group down its tree; both runs one soak
// each way.
func TestChurnSoak(t *testing.T) {
	v := cmp.Or(os.Getenv("IPOP_SOAK"), "2m")
	if v == "off" || testing.Short() {
		t.Skip("the churn soak is off (IPOP_SOAK=off or -short)")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		t.Fatalf("IPOP_SOAK=%q: want a duration of at least 1m (2m, 30m) or off", v)
	}
	// IPOP_SOAK_SEND: how the group goes, replicate (unset), tree, or
	// both (one soak each way). Not down a tree in the test command yet:
	// a 30-minute tree soak failed 3 of 20 kills (a dead node's child
	// lost 2.7-3.2 s) and a 2-minute one an address change (3.7 s).
	modes := []string{"replicate"}
	switch send := os.Getenv("IPOP_SOAK_SEND"); send {
	case "", "replicate":
	case "tree":
		modes = []string{"tree"}
	case "both":
		modes = []string{"replicate", "tree"}
	default:
		t.Fatalf("IPOP_SOAK_SEND=%q: want replicate, tree or both", send)
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { churnSoak(t, d, mode) })
	}
}

// churnSoak is one soak of d, the group sent by mode (replicate: by the
// source to each subscriber; tree: down its tree).
func churnSoak(t *testing.T, d time.Duration, mode string) {
	replicateMax, othersLoss := 8, soakOthersLoss
	if mode == "tree" {
		replicateMax, othersLoss = 0, soakOthersLossTree
	}
	const (
		group    = "239.8.8.8"
		port     = 5008
		interval = 20 * time.Millisecond // 50 datagrams/s
		every    = 20 * time.Second
	)
	o := newOverlay(t)
	type member struct {
		n      *lab.Node
		router *netns.Host     // its NAT, if behind one
		r      *lab.Receiver   // the current one
		old    []*lab.Receiver // those of its earlier runs (restarts)
		ping   *lab.Pinger     // from the source
	}
	var ms []*member
	arrived := func(m *member, seq int) (time.Time, bool) {
		if at, ok := m.r.Arrived(seq); ok {
			return at, true
		}
		for _, r := range m.old {
			if at, ok := r.Arrived(seq); ok {
				return at, true
			}
		}
		return time.Time{}, false
	}
	start := func(h *netns.Host, name string, i int) *lab.Node {
		n, err := o.l.Start(h, lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i), Rendezvous: o.rv,
			// Keys move on every 5 s, not 2 min: the soak's nodes live
			// through hundreds of generations, as long-running ones do
			// (a restarted node once could not open end-to-end traffic
			// from a node 8+ generations on).
			//
			// replicate_max 8: the group (7 subscriber nodes) is sent by
			// its source to each (issue 12's path); IPOP_SOAK_SEND=tree
			// sends it down a tree (replicate_max 0).
			Config: map[string]any{"ice": map[string]any{"port": 4000}, "metrics": map[string]any{"listen": h.Addr.String() + ":9100"},
				"trust": map[string]any{"rekey_interval": "5s"}, "multicast": map[string]any{"replicate_max": replicateMax}}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 6 {
		name := fmt.Sprintf("p%d", i)
		ms = append(ms, &member{n: start(o.public(t, name), name, i+1)})
	}
	for i := range 2 {
		name := fmt.Sprintf("n%d", i)
		h, router, err := o.tb.AddNATHost(name, netns.EndpointIndependent)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, &member{n: start(h, name, 7+i), router: router})
	}
	src, rest := ms[0], ms[1:]
	for _, m := range rest {
		m.r = join(t, m.n, group, port, "")
	}
	var names []string
	for _, m := range rest {
		names = append(names, m.n.Name)
	}
	slices.Sort(names)
	waitSubscribers(t, src.n, group, names...)
	usage := func() map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			u, _ := m.n.Usage()
			g, _ := lab.Scrape(m.n.Host, m.n.Host.Addr.String()+":9100")
			out[m.n.Name] = fmt.Sprintf("%.0f goroutines, %.0f MiB", g["go_goroutines"], float64(u.RSS)/(1<<20))
		}
		return out
	}
	before := usage()
	stream, err := lab.StartStream(src.n.Host, "ipop0", group, port, interval)
	if err != nil {
		t.Fatal(err)
	}
	// Pings from the source to every other node, 5 a second, throughout.
	for i, m := range rest {
		if m.ping, err = lab.StartPing(src.n.Host, fmt.Sprintf("ping%d", i), m.n.Addr4(), 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	// Before any trouble, every receiver has the stream and every ping
	// its replies.
	eventually(t, 10*time.Second, "the stream and pings at every node before the first event", func() error {
		since := time.Now().Add(-time.Second)
		for _, m := range rest {
			got := false
			for seq, at := range stream.Sent() {
				if at.After(since) {
					if _, ok := m.r.Arrived(seq); ok {
						got = true
						break
					}
				}
			}
			r := m.ping.Replies()
			if !got || len(r) == 0 || r[len(r)-1].Before(since) {
				g, _ := src.n.Ctl("groups")
				p, _ := src.n.Ctl("peers")
				return fmt.Errorf("%s: stream %v, pings %d; the source's groups:\n%s\npeers:\n%s", m.n.Name, got, len(r), g, p)
			}
		}
		return nil
	})
	type event struct {
		kind    string
		m       *member
		at, end time.Time
		// until: the trouble's last step (an address change's move
		// back), if after end; others' losses are counted to 5 s after.
		until time.Time
		// recovery: from the end of the trouble to the affected node's
		// first datagram (ping: reply) sent after it; -1: never.
		recovery, pingBack time.Duration
		lostOthers         map[string]int
	}
	var events []*event
	kinds := []string{"kill", "loss", "nat-flush", "addr-change"}
	began := time.Now()
	// A watch for the soak's own failures: the first time a node that no
	// event is on misses the stream for 2 s, the state of it and of the
	// source goes into the log, for whoever reads a failed run.
	var (
		affected  sync.Map   // *member → true while an event is on it
		rmu       sync.Mutex // guards members' r against the watch
		watchStop = make(chan struct{})
		watchDone = make(chan struct{})
		stopOnce  sync.Once
	)
	stopWatch := func() { stopOnce.Do(func() { close(watchStop); <-watchDone }) }
	t.Cleanup(stopWatch) // also after a t.Fatal: no logging after the test
	go func() {
		defer close(watchDone)
		reported := map[*member]bool{}
		for {
			select {
			case <-watchStop:
				return
			case <-time.After(time.Second):
			}
			sent := stream.Sent()
			for _, m := range rest {
				if _, on := affected.Load(m); on || reported[m] {
					continue
				}
				got := false
				rmu.Lock()
				r := m.r
				rmu.Unlock()
				for seq := len(sent) - 1; seq >= 0 && time.Since(sent[seq]) < 2*time.Second; seq-- {
					if _, ok := r.Arrived(seq); ok || time.Since(sent[seq]) < 200*time.Millisecond {
						got = true
						break
					}
				}
				if !got {
					reported[m] = true
					var b strings.Builder
					for _, n := range []*lab.Node{src.n, m.n} {
						for _, cmd := range []string{"groups", "peers", "status"} {
							out, err := n.Ctl(cmd)
							fmt.Fprintf(&b, "--- %s: ipopctl %s (%v)\n%s\n", n.Name, cmd, err, out)
						}
					}
					t.Logf("%s has missed the stream for 2 s with no event on it (+%s):\n%s", m.n.Name, time.Since(began).Round(time.Second), b.String())
				}
			}
		}
	}()
	for k := 0; time.Since(began)+every <= d; k++ {
		time.Sleep(every / 2)
		e := &event{kind: kinds[k%len(kinds)], at: time.Now(), lostOthers: map[string]int{}}
		switch e.kind {
		case "kill":
			e.m = rest[1+k%(len(rest)-1)] // never the source
			affected.Store(e.m, true)
			e.m.n.Proc.Kill()
			time.Sleep(2 * time.Second)
			if err := e.m.n.Start(); err != nil {
				t.Fatal(err)
			}
			e.m.r.Close()
			r := join(t, e.m.n, group, port, "")
			rmu.Lock()
			e.m.old, e.m.r = append(e.m.old, e.m.r), r
			rmu.Unlock()
		case "loss":
			e.m = rest[k%len(rest)]
			affected.Store(e.m, true)
			rules := [][]string{{"INPUT"}, {"OUTPUT"}}
			for _, r := range rules {
				if out, err := e.m.n.Host.Run("iptables", "-w", "-I", r[0], "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"); err != nil {
					t.Fatalf("iptables: %v\n%s", err, out)
				}
			}
			time.Sleep(5 * time.Second)
			for _, r := range rules {
				e.m.n.Host.Run("iptables", "-w", "-D", r[0], "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
			}
		case "addr-change":
			// A public node's address is replaced (as a DHCP lease with
			// a new address would): the links from the old one restart,
			// its peers follow it, the rendezvous session dials again.
			// Once it has the stream back (or 10 s on), the old address
			// is put back, so the node can restart later.
			e.m = rest[k%5] // p1..p5
			h := e.m.n.Host
			old, tmp := h.Addr.String()+"/15", fmt.Sprintf("198.18.200.%d/15", 10+k%200)
			move := func(from, to string) {
				for _, c := range [][]string{{"sysctl", "-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1"},
					{"ip", "addr", "add", to, "dev", "eth0"}, {"ip", "addr", "del", from, "dev", "eth0"}} {
					if out, err := h.Run(c...); err != nil {
						t.Fatalf("%v: %v\n%s", c, err, out)
					}
				}
			}
			affected.Store(e.m, true)
			move(old, tmp)
			e.end = time.Now()
			for deadline := e.end.Add(soakRecovery); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if arrivedSince(e.m.r, stream.Sent(), e.end) {
					break
				}
			}
			time.Sleep(time.Second)
			move(tmp, old)
			e.until = time.Now()
		case "nat-flush":
			e.m = rest[len(rest)-1-k%2]
			affected.Store(e.m, true)
			if err := e.m.router.Do(func() error { return netlink.ConntrackTableFlush(netlink.ConntrackTable) }); err != nil {
				t.Fatal(err)
			}
		}
		if e.end.IsZero() {
			e.end = time.Now()
		}
		go func(m *member) { // the node recovers: watched again after soakRecovery
			time.Sleep(soakRecovery)
			affected.Delete(m)
		}(e.m)
		t.Logf("event %d at %s (+%s): %s on %s, %s", k, e.at.Format("15:04:05.000"), e.at.Sub(began).Round(time.Second), e.kind, e.m.n.Name, e.end.Sub(e.at).Round(10*time.Millisecond))
		events = append(events, e)
		time.Sleep(every / 2)
	}
	time.Sleep(2 * time.Second)
	stopWatch()
	stream.Stop()
	sent := stream.Sent()
	replies := map[*member][]time.Time{}
	for _, m := range rest {
		m.ping.Stop()
		replies[m] = m.ping.Replies()
	}
	after := usage()

	// Loss at the others: datagrams sent from the start of the trouble to
	// 5 s after its end that they never got, not counting a node still
	// recovering from an event of its own.
	dups := 0
	for _, m := range rest {
		dups += m.r.Duplicates()
		for _, r := range m.old {
			dups += r.Duplicates()
		}
	}
	recovering := func(m *member, at time.Time) bool {
		for _, e := range events {
			if e.m == m && !e.at.After(at) && (e.recovery < 0 || e.end.Add(e.recovery).After(at)) {
				return true
			}
		}
		return false
	}
	for _, e := range events {
		e.recovery, e.pingBack = -1, -1
		for seq, at := range sent {
			if at.Before(e.end) {
				continue
			}
			if got, ok := arrived(e.m, seq); ok {
				e.recovery = got.Sub(e.end)
				break
			}
		}
		for _, at := range replies[e.m] {
			if !at.Before(e.end) {
				e.pingBack = at.Sub(e.end)
				break
			}
		}
	}
	for _, e := range events {
		for _, m := range rest {
			if m == e.m || recovering(m, e.at) {
				continue
			}
			for seq, at := range sent {
				if !at.Before(e.at) && at.Before(later(e.end, e.until).Add(5*time.Second)) {
					if _, ok := arrived(m, seq); !ok {
						e.lostOthers[m.n.Name]++
					}
				}
			}
		}
		t.Logf("event at %s: %s on %s: stream back %s, ping back %s, lost at the others %v",
			e.at.Format("15:04:05.000"), e.kind, e.m.n.Name, backAfter(e.recovery), backAfter(e.pingBack), e.lostOthers)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s soak, %d datagrams at %s, pings at 200ms, %d events\n\n| event | count | stream back p50 | max | ping back p50 | max | lost at the others (datagrams, total) | others that lost ≥ 1 s (most lost) | never recovered |\n|---|---|---|---|---|---|---|---|---|\n",
		d, len(sent), interval, len(events))
	for _, kind := range kinds {
		var rec, pings []time.Duration
		n, lost, never, over, most := 0, 0, 0, 0, 0
		for _, e := range events {
			if e.kind != kind {
				continue
			}
			n++
			for _, l := range e.lostOthers {
				lost += l
				most = max(most, l)
				if time.Duration(l)*interval >= time.Second {
					over++
				}
			}
			if e.recovery < 0 || e.pingBack < 0 {
				never++
				continue
			}
			rec, pings = append(rec, e.recovery), append(pings, e.pingBack)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d (%s) | %d |\n", kind, n, spread(rec), spread(pings), lost, over, time.Duration(most)*interval, never)
	}
	fmt.Fprintf(&b, "\nduplicates: %d\n\n| node | start | end |\n|---|---|---|\n", dups)
	for _, m := range ms {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.n.Name, before[m.n.Name], after[m.n.Name])
	}
	t.Log(b.String())

	// What the issue asks: every event recovered from (stream and pings)
	// within soakRecovery, others losing under othersLoss of the stream
	// (1 s; 2 s down a tree), no duplicates.
	for _, e := range events {
		what := fmt.Sprintf("%s on %s at %s (+%s)", e.kind, e.m.n.Name, e.at.Format("15:04:05.000"), e.at.Sub(began).Round(time.Second))
		if e.recovery < 0 || e.recovery > soakRecovery || e.pingBack < 0 || e.pingBack > soakRecovery {
			g, _ := src.n.Ctl("groups")
			p, _ := e.m.n.Ctl("peers")
			t.Errorf("%s: stream back %s, pings back %s (bound %s); the source's groups now:\n%s\n%s's peers now:\n%s",
				what, backAfter(e.recovery), backAfter(e.pingBack), soakRecovery, g, e.m.n.Name, p)
		}
		for name, l := range e.lostOthers {
			if time.Duration(l)*interval >= othersLoss {
				t.Errorf("%s: %s lost %d datagrams (%s of the stream)", what, name, l, time.Duration(l)*interval)
			}
		}
	}
	if dups != 0 {
		t.Errorf("%d duplicate datagrams", dups)
	}
}

// backAfter is a recovery time, or "never" for -1 (which would round to
// "0s" and read as the fastest recovery).
func backAfter(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return "after " + d.Round(10*time.Millisecond).String()
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// arrivedSince reports whether r got a datagram of the stream sent at or
// after since.
func arrivedSince(r *lab.Receiver, sent []time.Time, since time.Time) bool {
	for seq := len(sent) - 1; seq >= 0 && !sent[seq].Before(since); seq-- {
		if _, ok := r.Arrived(seq); ok {
			return true
		}
	}
	return false
}

// soakRecovery bounds each event's recovery in the soak: the 5 s
// to see a failure plus the time to link again.
const soakRecovery = 10 * time.Second

// soakOthersLoss bounds what a node an event is not on may lose, as the
// issue asks. A node the source reaches directly loses nothing; one it
// reaches through the node that died loses until the source routes around
// that node: it probes a peer it sends to but does not hear, and routes
// around it after 0.7 s of silence (dataplane's fast reroute).
const soakOthersLoss = time.Second

// soakOthersLossTree is soakOthersLoss down a tree: the bound issue 13
// sets for a tree node's death (every subscriber below a dead tree node,
// or all of them when it was the root or where the source put its
// frames onto the tree, lose until the rejoin: ~0.6 s, once 1.06 s in a
// 30-minute run).
const soakOthersLossTree = 2 * time.Second

// spread is "p50 | max" of ds, or "- | -".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "- | -"
	}
	slices.Sort(ds)
	return ds[len(ds)/2].Round(10*time.Millisecond).String() + " | " + ds[len(ds)-1].Round(10*time.Millisecond).String()
}
