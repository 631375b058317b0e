package e2e

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/overlay/control"
)

// udpCounter counts datagrams arriving on a port in a namespace, by
// payload.
type udpCounter struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  map[string]int
}

func listenUDP(t *testing.T, h *netns.Host, port int) *udpCounter {
	t.Helper()
	u := &udpCounter{got: map[string]int{}}
	err := h.Do(func() (err error) {
		u.conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := u.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.got[string(buf[:n])]++
			u.mu.Unlock()
		}
	}()
	return u
}

func (u *udpCounter) count(payload string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got[payload]
}

// udpRcvbufErrors is the kernel's count of UDP datagrams dropped in h's
// namespace because a socket's buffer was full (/proc/net/snmp).
func udpRcvbufErrors(t *testing.T, h *netns.Host) int {
	t.Helper()
	out, err := h.Run("cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.Atoi(f[i])
				return n
			}
		}
	}
	t.Fatalf("no Udp RcvbufErrors in /proc/net/snmp: %s", out)
	return 0
}

// attackCase is one attack of TestMaliciousMember: what the attacker
// does, which of the target's counters must account for it, and what
// must still hold afterwards.
type attackCase struct {
	name string
	n    int
	rate float64
	// counters of the target (beta), or of the rendezvous when
	// rendezvous is set, whose rise accounts for the attempts: at least
	// want(attempts, seconds) of them.
	counters   []string
	rendezvous bool
	want       func(attempts int, secs float64) int
	// check is what the attack must not have changed (nil: only the
	// health checks every attack has).
	check func(t *testing.T) error
}

func exactly(k int) func(int, float64) int { return func(n int, _ float64) int { return k * n } }

// TestMaliciousMember: mallory, a member with a valid certificate for
// 10.254.0.3 only, attacks alpha and beta with real processes (ipopd and
// ipopd-attacker, the same code with an attack API): messages in alpha's
// name, invented node IDs, spoofed frames on its own TAP, floods. For
// each attack: attempts, what got through (must be nothing), the
// counter that saw it, and the victims' health meanwhile (alpha–beta
// link kept, pings, beta's CPU and memory). The table is logged.
func TestMaliciousMember(t *testing.T) {
	o := newOverlay(t)
	alpha := o.node(t, o.public(t, "a"), "alpha", 1)
	beta := o.node(t, o.public(t, "b"), "beta", 2)
	mallory, err := o.l.Start(o.public(t, "m"), lab.Spec{Name: "mallory", Address: "10.254.0.3/16", Address6: "fd54::3/64",
		Rendezvous: o.rv, Attacker: true, Config: map[string]any{"ice": map[string]any{"port": 4000}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*lab.Node{alpha, beta, mallory} {
		others := map[string][]string{"alpha": {"beta", "mallory"}, "beta": {"alpha", "mallory"}, "mallory": {"alpha", "beta"}}[n.Name]
		if _, err := n.WaitUp(30*time.Second, others...); err != nil {
			t.Fatal(err)
		}
	}
	mac := func(n *lab.Node) string {
		st, err := n.Status()
		if err != nil {
			t.Fatal(err)
		}
		return st.TAP.MAC
	}
	alphaMAC, betaMAC, malloryMAC := mac(alpha), mac(beta), mac(mallory)
	pingOK(t, alpha, beta.Addr4(), 3) // each learns the other's MAC and neighbour entry
	pingOK(t, beta, alpha.Addr4(), 3)
	pingOK(t, beta, "fd54::1", 3)

	const group, gport, uport = "239.7.7.7", 5007, 9999
	rx := join(t, alpha, group, gport, "")
	waitSubscribers(t, beta, group, "alpha")
	udp := listenUDP(t, beta.Host, uport)

	base := url.Values{"victim": {"alpha"}, "target": {"beta"}, "victim_ip": {"10.254.0.1"}, "victim_ip6": {"fd54::1"},
		"victim_mac": {alphaMAC}, "target_ip": {"10.254.0.2"}, "target_mac": {betaMAC}, "port": {strconv.Itoa(uport)}}

	linkUp := func(n *lab.Node, peer string) error {
		if state, _ := linkTo(t, n, peer); state != "up" {
			return fmt.Errorf("%s: link to %s %q", n.Name, peer, state)
		}
		return nil
	}
	noneReceived := func(payloads ...string) func(*testing.T) error {
		return func(*testing.T) error {
			for _, p := range payloads {
				if got := udp.count(p); got != 0 {
					return fmt.Errorf("beta's socket got %d datagrams %q", got, p)
				}
			}
			return nil
		}
	}
	neighNot := func(ip string) func(*testing.T) error {
		return func(*testing.T) error {
			out, err := beta.Host.Run("ip", "neigh", "show", ip)
			if err != nil {
				return err
			}
			if strings.Contains(out, malloryMAC) {
				return fmt.Errorf("beta's kernel has %s at mallory's MAC: %s", ip, out)
			}
			out, err = beta.Ctl("arp", "--json")
			if err != nil {
				return err
			}
			var ns control.Neighbours
			if err := jsonUnmarshal(out, &ns); err != nil {
				return err
			}
			for _, e := range ns.Entries {
				if e.IP == ip && (e.MAC == malloryMAC || e.Owner == "mallory") {
					return fmt.Errorf("beta's neighbour table has %s at %s (%s)", ip, e.MAC, e.Owner)
				}
			}
			return nil
		}
	}

	cases := []attackCase{
		{name: "forged-signal", n: 300, counters: []string{"bad_origin", "e2e_failed"}, want: exactly(1)},
		{name: "forged-membership", n: 200, counters: []string{"bad_origin", "e2e_failed"}, want: exactly(1),
			check: func(t *testing.T) error {
				if got := subscribers(groupOn(t, beta, group)); strings.Join(got, ",") != "alpha" {
					return fmt.Errorf("beta sees %v subscribed to %s, want alpha", got, group)
				}
				before := rx.Got()
				send(t, beta, group, gport, 10, 20*time.Millisecond)
				time.Sleep(500 * time.Millisecond)
				if got := rx.Got() - before; got != 10 {
					return fmt.Errorf("alpha got %d of 10 datagrams of %s from beta", got, group)
				}
				return nil
			}},
		{name: "forged-sync", n: 100, counters: []string{"bad_origin", "e2e_failed"}, want: exactly(1)},
		{name: "forged-advert", n: 100, counters: []string{"bad_origin"}, want: exactly(1), check: neighNot("10.254.0.1")},
		{name: "squat-advert", n: 50, counters: []string{"advert_not_in_certificate"}, want: exactly(2),
			check: func(t *testing.T) error {
				if err := neighNot("10.254.0.1")(t); err != nil {
					return err
				}
				return neighNot("fd54::1")(t)
			}},
		{name: "forged-neighbors", n: 100, counters: []string{"bad_origin", "e2e_failed"}, want: exactly(1)},
		{name: "eclipse", n: 10, counters: []string{"neighbors_ignored"}, want: exactly(255),
			check: func(t *testing.T) error {
				st, err := beta.Status()
				if err != nil {
					return err
				}
				if st.Ring == nil || st.Ring.Known != 2 {
					return fmt.Errorf("beta knows %+v nodes, want 2", st.Ring)
				}
				for _, s := range st.Ring.Successors {
					if s.Name != "alpha" && s.Name != "mallory" {
						return fmt.Errorf("beta's successor %q (%s) is not a real node", s.Name, s.NodeID)
					}
				}
				return nil
			}},
		{name: "forged-proof", n: 100, counters: []string{"proof_refused"}, want: exactly(1)},
		{name: "invented-offers", n: 500, counters: []string{"bad_origin"}, want: exactly(1)},
		// Up to 64 origins' frames wait (5 s) for a certificate that never
		// comes. Paced: sent as fast as the attacker can, a share is lost in
		// beta's socket buffer before ipopd sees it, uncounted (a full run
		// under -race: 512 of 2000 counted).
		{name: "invented-frames", n: 2000, rate: 1000, counters: []string{"unknown_origin"}, want: func(n int, _ float64) int { return n - 64 }},
		{name: "spoof-ip", n: 100, counters: []string{"spoofed_source"}, want: exactly(1), check: noneReceived("spoof-ip")},
		{name: "spoof-mac-ip", n: 100, counters: []string{"spoofed_source"}, want: exactly(1), check: noneReceived("spoof-mac-ip")},
		{name: "steal-mac", n: 100, counters: []string{"spoofed_mac"}, want: exactly(1), check: noneReceived("steal-mac")},
		{name: "garp", n: 20, counters: []string{"spoofed_arp"}, want: exactly(1), check: neighNot("10.254.0.1")},
		{name: "nd-na", n: 20, counters: []string{"spoofed_nd"}, want: exactly(1), check: neighNot("fd54::1")},
		{name: "forged-broadcast", n: 100, counters: []string{"bad_origin"}, want: exactly(1), check: neighNot("10.254.0.1")},
		{name: "storm", n: 100, counters: []string{"bad_route"}, want: exactly(1)},
		// 64 frames from new MACs per attempt; mallory's share is 4096.
		{name: "mac-flood", n: 200, counters: []string{"mac_table_full"}, want: func(n int, _ float64) int { return 64*n - 4096 },
			check: func(t *testing.T) error {
				p, err := beta.Peers()
				if err != nil {
					return err
				}
				if p.MACs > 4096+8 {
					return fmt.Errorf("beta holds %d MACs", p.MACs)
				}
				return nil
			}},
		// The per-link limit lets 2000 through at once and 1000/s after.
		{name: "broadcast-flood", n: 20000, counters: []string{"broadcast_rate_limited"},
			want: func(n int, secs float64) int { return n - 2000 - int(1000*secs) - 1000 }},
		// The rendezvous lets 400 through at once and 200/s after; the
		// attacker's own queue drops some (its errors).
		{name: "relay-flood", n: 5000, rate: 2000, counters: []string{`ipop_rendezvous_refused_total{reason="relay_rate_limited"}`}, rendezvous: true,
			want: func(n int, secs float64) int { return n - 400 - int(200*secs) - 200 },
			check: func(t *testing.T) error {
				p, err := beta.Peers()
				if err != nil {
					return err
				}
				if p.Rendezvous == "" {
					return fmt.Errorf("beta lost its rendezvous session")
				}
				return nil
			}},
		// Last: the offers that pass (4 at once, then 1/s) replace
		// mallory's own link to beta. Those that reach beta after its
		// data plane has let go of that link are for a session that is
		// gone (no_path) or come from an address it no longer knows
		// (unknown_source); which share is which depends on how fast
		// beta's loop is. When mallory's ID is above beta's,
		// every offer breaks the protocol (bad_signal).
		{name: "offer-flood", n: 1000, counters: []string{"offer_rate_limited", "bad_signal", "no_path", "unknown_source"},
			want: func(n int, secs float64) int { return n - 4 - int(secs) - 1 }},
	}

	type row struct {
		name                  string
		attempts, sendErrors  int
		refused, want         int
		counters, effect      string
		pingLoss              string
		cpu                   float64
		rssMiB, rssBeforeMiB  float64
		secs                  float64
		alphaBetaLinkUnbroken bool
	}
	var rows []row
	drops := func(n *lab.Node) map[string]uint64 {
		p, err := n.Peers()
		if err != nil {
			t.Fatal(err)
		}
		return p.Drops
	}
	rvCounters := func() map[string]float64 {
		m, err := o.rv.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	linkAge := func(n *lab.Node, peer string) time.Duration {
		p, err := n.Peers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Links {
			if l.Name == peer && l.State == "up" {
				return time.Duration(l.Age)
			}
		}
		return -1
	}
	var only map[string]bool // IPOP_ATTACKS=a,b runs only those
	if v := os.Getenv("IPOP_ATTACKS"); v != "" {
		only = map[string]bool{}
		for _, name := range strings.Split(v, ",") {
			only[name] = true
		}
	}
	for _, c := range cases {
		if only != nil && !only[c.name] {
			continue
		}
		if _, err := mallory.WaitUp(30*time.Second, "alpha", "beta"); err != nil {
			t.Fatalf("before %s: %v", c.name, err)
		}
		pingOK(t, alpha, beta.Addr4(), 2) // fresh MAC bindings for the MAC checks
		before, rvBefore := drops(beta), rvCounters()
		kernelBefore := udpRcvbufErrors(t, beta.Host)
		ageBefore := linkAge(beta, "alpha")
		u0, err := beta.Usage()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		pingOut := make(chan string, 1)
		go func() { out, _ := alpha.Ping(beta.Addr4(), 10); pingOut <- out }()
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("n", strconv.Itoa(c.n))
		if c.rate > 0 {
			q.Set("rate", fmt.Sprint(c.rate))
		}
		res, err := mallory.Attack(c.name, q)
		if err != nil {
			t.Fatal(err)
		}
		ping := <-pingOut
		time.Sleep(500 * time.Millisecond) // what is on its way arrives
		wall := time.Since(start)
		u1, err := beta.Usage()
		if err != nil {
			t.Fatal(err)
		}
		after, rvAfter := drops(beta), rvCounters()
		refused := 0
		for _, k := range c.counters {
			if c.rendezvous {
				refused += int(rvAfter[k] - rvBefore[k])
			} else {
				refused += int(after[k] - before[k])
			}
		}
		r := row{name: c.name, attempts: res.Attempts, sendErrors: res.Errors, refused: refused,
			want: c.want(res.Attempts-res.Errors, res.Seconds), counters: strings.Join(c.counters, "+"), secs: res.Seconds,
			cpu: float64(u1.CPU-u0.CPU) / float64(wall) * 100, rssMiB: float64(u1.RSS) / (1 << 20), rssBeforeMiB: float64(u0.RSS) / (1 << 20)}
		if m := lossRe.FindStringSubmatch(ping); m != nil {
			r.pingLoss = m[2] + "/" + m[1]
			if m[1] != m[2] {
				t.Errorf("%s: alpha→beta pings during the attack: %s received", c.name, r.pingLoss)
			}
		} else {
			t.Errorf("%s: ping alpha→beta: %s", c.name, ping)
		}
		ageAfter := linkAge(beta, "alpha")
		r.alphaBetaLinkUnbroken = ageBefore >= 0 && ageAfter >= ageBefore+wall-2*time.Second
		if !r.alphaBetaLinkUnbroken {
			t.Errorf("%s: beta's link to alpha was up %s before and %s after %s", c.name, ageBefore, ageAfter, wall.Round(time.Millisecond))
		}
		if err := linkUp(alpha, "beta"); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		r.effect = "none"
		if c.check != nil {
			if err := c.check(t); err != nil {
				r.effect = err.Error()
				t.Errorf("%s: %v", c.name, err)
			}
		}
		if refused < r.want {
			var rose []string // what beta counted instead
			for k, v := range after {
				if v > before[k] {
					rose = append(rose, fmt.Sprintf("%s +%d", k, v-before[k]))
				}
			}
			slices.Sort(rose)
			t.Errorf("%s: %s rose by %d for %d attempts (%d not sent), want at least %d; beta's drops that rose: %s; beta's kernel dropped %d datagrams (socket buffer full)",
				c.name, r.counters, refused, res.Attempts, res.Errors, r.want, strings.Join(rose, ", "), udpRcvbufErrors(t, beta.Host)-kernelBefore)
		}
		if r.rssMiB-r.rssBeforeMiB > 50 {
			t.Errorf("%s: beta's memory grew from %.0f to %.0f MiB", c.name, r.rssBeforeMiB, r.rssMiB)
		}
		rows = append(rows, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| attack | attempts | got through | refused (counter) | alpha–beta link | pings alpha→beta | beta CPU | beta RSS |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		link := "kept"
		if !r.alphaBetaLinkUnbroken {
			link = "BROKEN"
		}
		sent := fmt.Sprint(r.attempts)
		if r.sendErrors > 0 {
			sent = fmt.Sprintf("%d (%d not sent)", r.attempts, r.sendErrors)
		}
		fmt.Fprintf(&b, "| %s | %s in %.1fs | %s | %d (%s) | %s | %s | %.0f%% | %.0f→%.0f MiB |\n",
			r.name, sent, r.secs, r.effect, r.refused, r.counters, link, r.pingLoss, r.cpu, r.rssBeforeMiB, r.rssMiB)
	}
	t.Log(b.String())
}
