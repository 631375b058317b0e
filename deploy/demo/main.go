// Command demo builds a small ipopd overlay inside throw-away network
// namespaces, shows it working, and removes everything it made. Run as root
// from the repository root: `go run ./deploy/demo` (README's demo command).
//
//	           "internet" 198.18.0.0/15
//	  ┌───────────┬───────────┴─────┬──────────────────┐
//	rendezvous   alpha          NAT (cone)        NAT (symmetric)
//	(signaling,  (public)          │                   │
//	 STUN, TURN)                 beta               gamma
//
// Each node gets an overlay address (10.254.0.N/16, fd54::N/64) on its TAP.
// The demo prints each node's links with their path (host, srflx, relay),
// pings every overlay address from every node, streams multicast to two
// subscribers and shows `ipopctl groups`, and cleans up.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

func main() {
	hold := flag.Bool("hold", false, "keep the overlay running until Ctrl-C, to explore with `ip netns exec`")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root (network namespaces and TAPs); run: sudo go run ./deploy/demo")
		os.Exit(1)
	}
	tb, err := netns.New("demo")
	if err != nil {
		fail(nil, err)
	}
	// Whatever happens, remove the namespaces and processes.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("\ninterrupted: cleaning up")
		tb.Close()
		os.Exit(130)
	}()
	if err := demo(tb, *hold, sig); err != nil {
		fail(tb, err)
	}
	if err := tb.Close(); err != nil {
		fail(nil, err)
	}
	fmt.Println("\n== cleaned up: no namespaces or processes left")
}

func fail(tb *netns.Testbed, err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	if tb != nil {
		tb.Close()
	}
	os.Exit(1)
}

type member struct {
	name string
	host *netns.Host
	node *lab.Node
	desc string
}

func demo(tb *netns.Testbed, hold bool, sig chan os.Signal) error {
	step("building ipopd, ipopctl, ipop-rendezvous; network CA with `ipopctl ca init --network demo`")
	l, err := lab.New(tb, "demo")
	if err != nil {
		return err
	}
	rvHost, err := tb.AddPublicHost("rv")
	if err != nil {
		return err
	}
	rv, err := l.StartRendezvous(rvHost, true)
	if err != nil {
		return err
	}
	fmt.Printf("rendezvous on %s (signaling), STUN/TURN on %s\n", rv.Addr, rv.TURN)

	alpha, err := tb.AddPublicHost("alpha")
	if err != nil {
		return err
	}
	beta, _, err := tb.AddNATHost("beta", netns.EndpointIndependent)
	if err != nil {
		return err
	}
	gamma, _, err := tb.AddNATHost("gamma", netns.EndpointDependent)
	if err != nil {
		return err
	}
	members := []*member{
		{name: "alpha", host: alpha, desc: "public " + alpha.Addr.String()},
		{name: "beta", host: beta, desc: "behind an endpoint-independent NAT (" + beta.Addr.String() + ")"},
		{name: "gamma", host: gamma, desc: "behind a symmetric NAT (" + gamma.Addr.String() + ")"},
	}
	step("starting the nodes")
	start := time.Now()
	for i, m := range members {
		spec := lab.Spec{Name: m.name, Address: fmt.Sprintf("10.254.0.%d/16", i+1), Address6: fmt.Sprintf("fd54::%d/64", i+1), Rendezvous: rv}
		if m.node, err = l.Start(m.host, spec); err != nil {
			return err
		}
		fmt.Printf("%-6s %-50s overlay %s, %s\n", m.name, m.desc, spec.Address, spec.Address6)
	}
	for _, m := range members {
		var others []string
		for _, o := range members {
			if o != m {
				others = append(others, o.name)
			}
		}
		if _, err := m.node.WaitUp(60*time.Second, others...); err != nil {
			return err
		}
	}
	fmt.Printf("all links up %s after start\n", time.Since(start).Round(100*time.Millisecond))
	for _, m := range members {
		step("ipopctl peers on " + m.name)
		out, err := m.node.Ctl("peers")
		if err != nil {
			return err
		}
		fmt.Print(out)
	}

	step("ping every overlay address from every node (3 echoes each, IPv4 and IPv6)")
	failed := 0
	for _, from := range members {
		for i, to := range members {
			if from == to {
				continue
			}
			for _, dst := range []string{to.node.Addr4(), fmt.Sprintf("fd54::%d", i+1)} {
				out, err := from.node.Ping(dst, 3)
				fmt.Printf("%-6s → %-6s %-12s %s\n", from.name, to.name, dst, summary(out, err))
				if err != nil {
					failed++
				}
			}
		}
	}
	step("multicast: beta and gamma join 239.1.1.1; alpha sends 100 datagrams")
	if err := multicast(members); err != nil {
		return err
	}
	if hold {
		step(fmt.Sprintf("holding; try: ip netns exec %s ping 10.254.0.3   (Ctrl-C ends)", alpha.NS))
		<-sig
	}
	if failed > 0 {
		return fmt.Errorf("%d ping runs failed", failed)
	}
	return nil
}

// multicast shows per-group forwarding: two receivers join, the sender's
// node learns it from its peers' advertisements, and only they get the stream.
func multicast(members []*member) error {
	alpha, beta, gamma := members[0], members[1], members[2]
	var rs []*lab.Receiver
	for _, m := range []*member{beta, gamma} {
		r, err := lab.Join(m.host, "ipop0", "239.1.1.1", 5000, "")
		if err != nil {
			return err
		}
		defer r.Close()
		rs = append(rs, r)
	}
	time.Sleep(time.Second) // the kernel's report, the querier, the advertisement
	if err := lab.Send(alpha.host, "ipop0", "239.1.1.1", 5000, 100, 5*time.Millisecond); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	fmt.Printf("beta received %d, gamma received %d of 100\n", rs[0].Got(), rs[1].Got())
	step("ipopctl groups on alpha")
	out, err := alpha.node.Ctl("groups")
	if err != nil {
		return err
	}
	fmt.Print(out)
	if rs[0].Got() != 100 || rs[1].Got() != 100 {
		return fmt.Errorf("multicast: not every datagram arrived")
	}
	return nil
}

var pingSummary = regexp.MustCompile(`(\d+ received, [\d.]+% packet loss).*\n.*= [\d.]+/([\d.]+)/`)

func summary(out string, err error) string {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return fmt.Sprintf("FAILED (%v)", err)
	}
	return fmt.Sprintf("%s, avg rtt %s ms", m[1], m[2])
}

func step(s string) { fmt.Printf("\n== %s\n", s) }
