package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// TestChurnSoak: eight nodes (six public, two behind NATs) carry a
// multicast stream from one of them to the seven others while, every
// ~20 s, something goes wrong: a node is killed and restarted, a node's
// underlay drops 30% of packets for 5 s (iptables statistic), or a NAT
// forgets its mappings (conntrack flushed). It reports, per kind of event,
// the affected node's recovery (from the end of the trouble to its next
// datagram: p50 and max), the datagrams the other nodes lost meanwhile,
// duplicates (must be 0), and each node's goroutines and RSS at the start
// and the end. It runs only when asked, for the duration asked:
//
//	IPOP_NETNS=1 IPOP_SOAK=2m go test -count=1 -run TestChurnSoak -v ./deploy/e2e
//	IPOP_NETNS=1 IPOP_SOAK=30m go test -count=1 -timeout 40m -run TestChurnSoak -v ./deploy/e2e
//
// Not in CI yet: a restarted node sometimes gets the stream back only
// after ~30 s (the ring's hold-down, it seems), and an affected node has
// been seen not to recover within the run; see issue 12's note.
func TestChurnSoak(t *testing.T) {
	v := os.Getenv("IPOP_SOAK")
	if v == "" {
		t.Skip("the churn soak runs with IPOP_SOAK=DURATION (2m, 30m)")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("IPOP_SOAK=%q: %v", v, err)
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
		router *netns.Host // its NAT, if behind one
		r      *lab.Receiver
	}
	var ms []*member
	start := func(h *netns.Host, name string, i int) *lab.Node {
		n, err := o.l.Start(h, lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i), Rendezvous: o.rv,
			Config: map[string]any{"ice": map[string]any{"port": 4000}, "metrics": map[string]any{"listen": h.Addr.String() + ":9100"}}})
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
	type event struct {
		kind       string
		m          *member
		at, end    time.Time
		recovery   time.Duration // -1: never
		lostOthers int
	}
	var events []*event
	kinds := []string{"kill", "loss", "nat-flush"}
	began := time.Now()
	for k := 0; time.Since(began)+every <= d; k++ {
		time.Sleep(every / 2)
		e := &event{kind: kinds[k%len(kinds)], at: time.Now()}
		switch e.kind {
		case "kill":
			e.m = rest[1+k%(len(rest)-1)] // never the source
			e.m.n.Proc.Kill()
			time.Sleep(2 * time.Second)
			if err := e.m.n.Start(); err != nil {
				t.Fatal(err)
			}
			e.m.r.Close()
			e.m.r = join(t, e.m.n, group, port, "")
		case "loss":
			e.m = rest[k%len(rest)]
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
		case "nat-flush":
			e.m = rest[len(rest)-1-k%2]
			if err := e.m.router.Do(func() error { return netlink.ConntrackTableFlush(netlink.ConntrackTable) }); err != nil {
				t.Fatal(err)
			}
		}
		e.end = time.Now()
		events = append(events, e)
		time.Sleep(every / 2)
	}
	time.Sleep(2 * time.Second)
	stream.Stop()
	sent := stream.Sent()
	after := usage()

	// Recovery: from the end of the trouble to the affected node's first
	// datagram sent after it. Loss at the others: datagrams sent from the
	// start of the trouble to 5 s after its end that they never got.
	dups := 0
	for _, m := range rest {
		dups += m.r.Duplicates()
	}
	for _, e := range events {
		e.recovery = -1
		for seq, at := range sent {
			if at.Before(e.end) {
				continue
			}
			if got, ok := e.m.r.Arrived(seq); ok {
				e.recovery = got.Sub(e.end)
				break
			}
		}
		for _, m := range rest {
			if m == e.m {
				continue
			}
			for seq, at := range sent {
				if !at.Before(e.at) && at.Before(e.end.Add(5*time.Second)) {
					if _, ok := m.r.Arrived(seq); !ok {
						e.lostOthers++
					}
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s soak, %d datagrams at %s, %d events\n\n| event | count | recovery p50 | recovery max | lost at the others (datagrams, total) | never recovered |\n|---|---|---|---|---|---|\n",
		d, len(sent), interval, len(events))
	for _, kind := range kinds {
		var rec []time.Duration
		lost, never := 0, 0
		for _, e := range events {
			if e.kind != kind {
				continue
			}
			lost += e.lostOthers
			if e.recovery < 0 {
				never++
				continue
			}
			rec = append(rec, e.recovery)
		}
		slices.Sort(rec)
		p50, mx := "-", "-"
		if len(rec) > 0 {
			p50, mx = rec[len(rec)/2].Round(10*time.Millisecond).String(), rec[len(rec)-1].Round(10*time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d |\n", kind, len(rec)+never, p50, mx, lost, never)
		for _, e := range events {
			if e.kind == kind && e.recovery < 0 {
				g, _ := src.n.Ctl("groups")
				p, _ := e.m.n.Ctl("peers")
				t.Errorf("%s at %s (%s after the start): the stream never came back; the source's groups:\n%s\n%s's peers:\n%s",
					kind, e.m.n.Name, e.at.Sub(began).Round(time.Second), g, e.m.n.Name, p)
			}
		}
	}
	fmt.Fprintf(&b, "\nduplicates: %d\n\n| node | start | end |\n|---|---|---|\n", dups)
	for _, m := range ms {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.n.Name, before[m.n.Name], after[m.n.Name])
	}
	t.Log(b.String())
	if dups != 0 {
		t.Errorf("%d duplicate datagrams", dups)
	}
}
