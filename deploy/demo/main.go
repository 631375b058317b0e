// Command demo runs an ipopd node inside a throw-away network namespace and
// shows what it does, then removes everything it made. Run as root from the
// repository root: `go run ./deploy/demo` (README's demo command).
//
// Today the demo is one node: it makes a network CA and a node certificate
// with ipopctl, starts ipopd in a namespace, shows `ipopctl status`, joins a
// multicast group on the TAP so that the kernel's IGMP report is read by
// ipopd, and stops it with SIGTERM. Later versions grow it into an overlay.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

func main() {
	hold := flag.Bool("hold", false, "keep the namespace and node running until Ctrl-C, to explore with `ip netns exec`")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root (network namespaces and a TAP); run: sudo go run ./deploy/demo")
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

func demo(tb *netns.Testbed, hold bool, sig chan os.Signal) error {
	step("building ipopd and ipopctl; making the network CA (ipopctl ca init --network demo)")
	l, err := lab.New(tb, "demo")
	if err != nil {
		return err
	}
	h, err := tb.AddNamespace("alpha")
	if err != nil {
		return err
	}
	step("starting ipopd 'alpha' in namespace " + h.NS + " (cert from ipopctl cert issue --ip 10.254.0.1/32 --ip fd54::1/128)")
	n, err := l.Start(h, lab.Spec{Name: "alpha", Address: "10.254.0.1/16", Address6: "fd54::1/64"})
	if err != nil {
		return err
	}
	show(h, "ip", "addr", "show", "dev", "ipop0")
	step("ipopctl status")
	out, err := n.Ctl("status")
	if err != nil {
		return err
	}
	fmt.Print(out)

	step("joining 239.1.2.3 on ipop0: the kernel sends an IGMPv3 report, ipopd reads it off the TAP")
	var conn net.PacketConn
	err = h.Do(func() error {
		c, err := net.ListenPacket("udp4", "0.0.0.0:5000")
		if err != nil {
			return err
		}
		conn = c
		ifi, err := net.InterfaceByName("ipop0")
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3)})
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	time.Sleep(time.Second)
	st, err := n.Status()
	if err != nil {
		return err
	}
	fmt.Printf("ipopd read %d IGMP and %d MLD frames from ipop0 so far\n", st.TAP.RxFrames["igmp"], st.TAP.RxFrames["mld"])

	if hold {
		step(fmt.Sprintf("holding; try: ip netns exec %s %s status --socket %s   (Ctrl-C ends)", h.NS, l.Bins.Ipopctl, n.Socket))
		<-sig
	}
	step("stopping ipopd with SIGTERM")
	if err := n.Proc.Stop(); err != nil {
		return fmt.Errorf("ipopd did not stop cleanly: %v\n%s", err, n.Proc.Log())
	}
	if _, err := h.Run("ip", "link", "show", "ipop0"); err == nil {
		return fmt.Errorf("ipop0 still exists after SIGTERM")
	}
	fmt.Println("ipop0 is gone, control socket removed")
	return nil
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

func show(h *netns.Host, args ...string) {
	out, err := h.Run(args...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(out)
}
