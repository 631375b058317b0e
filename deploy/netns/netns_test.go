//go:build linux

package netns_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// TestNATKinds builds two public hosts and one host behind each kind of NAT,
// checks that both NATed hosts reach the Internet, and that one local UDP
// socket gets one external port from the endpoint-independent NAT but a port
// per destination from the endpoint-dependent one.
func TestNATKinds(t *testing.T) {
	t.Parallel()
	tb := netns.NewT(t)
	pub1 := must(tb.AddPublicHost("pub1"))(t)
	pub2 := must(tb.AddPublicHost("pub2"))(t)
	ei, eiRouter, err := tb.AddNATHost("ei", netns.EndpointIndependent)
	if err != nil {
		t.Fatal(err)
	}
	ed, edRouter, err := tb.AddNATHost("ed", netns.EndpointDependent)
	if err != nil {
		t.Fatal(err)
	}

	for _, h := range []*netns.Host{ei, ed} {
		if err := ping(h, pub1.Addr); err != nil {
			t.Fatalf("%s (%v) cannot ping %v: %v", h, h.Addr, pub1.Addr, err)
		}
	}

	const port = 3478
	listeners := map[netip.Addr]*net.UDPConn{
		pub1.Addr: listenUDP(t, pub1, port),
		pub2.Addr: listenUDP(t, pub2, port),
	}
	for _, c := range []struct {
		host, router *netns.Host
		kind         netns.NATKind
	}{
		{ei, eiRouter, netns.EndpointIndependent},
		{ed, edRouter, netns.EndpointDependent},
	} {
		t.Run(c.kind.String(), func(t *testing.T) {
			sock := listenUDP(t, c.host, 0)
			var seen []netip.AddrPort
			for _, dst := range []netip.Addr{pub1.Addr, pub2.Addr} {
				src, err := probe(sock, listeners[dst], netip.AddrPortFrom(dst, port))
				if err != nil {
					t.Fatal(err)
				}
				if src.Addr() != c.router.WAN {
					t.Errorf("%v saw source %v, want the router's public %v", dst, src, c.router.WAN)
				}
				seen = append(seen, src)
			}
			t.Logf("local %v maps to %v (for %v) and %v (for %v)", sock.LocalAddr(), seen[0], pub1.Addr, seen[1], pub2.Addr)
			// --random-fully draws each port at random, so equal ports
			// would be a 1-in-64512 coincidence.
			same := seen[0].Port() == seen[1].Port()
			if want := c.kind == netns.EndpointIndependent; same != want {
				t.Errorf("same external port for both destinations = %v, want %v", same, want)
			}
		})
	}
}

// TestCloseRemovesEverything checks that Close deletes every namespace and
// ends every process, however they were made.
func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	netns.Require(t)
	tb, err := netns.New("close")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() }) // in case a check below fails first
	pub := must(tb.AddPublicHost("pub"))(t)
	host, router, err := tb.AddNATHost("lan", netns.EndpointIndependent)
	if err != nil {
		t.Fatal(err)
	}
	neighbour := must(tb.AddHostBehind(router, "lan2"))(t)
	for _, dst := range []netip.Addr{host.Addr, pub.Addr} {
		if err := ping(neighbour, dst); err != nil {
			t.Errorf("%s cannot ping %v: %v", neighbour, dst, err)
		}
	}
	if out, err := host.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(out, host.Addr.String()+"/24") {
		t.Errorf("Run in %s: %q, %v; want its address %v", host, out, err, host.Addr)
	}

	sleeper := must(host.Start("sleep", nil, "sleep", "300"))(t)
	talker := must(pub.Start("talker", []string{"GREETING=ready"}, "sh", "-c", `echo "$GREETING"; exec sleep 300`))(t)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(talker.Log(), "ready") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := talker.Log(); got != "ready\n" {
		t.Errorf("talker log = %q, want %q", got, "ready\n")
	}
	if err := talker.Stop(); err != nil {
		t.Errorf("Stop of a process that dies of SIGTERM: %v", err)
	}
	quitter := must(pub.Start("quitter", nil, "sh", "-c", "exit 3"))(t)
	<-quitter.Exited()
	if code, err := quitter.ExitCode(), quitter.Stop(); code != 3 || err == nil {
		t.Errorf("quitter: exit code %d and Stop error %v, want 3 and an error", code, err)
	}

	names := []string{pub.NS, host.NS, router.NS, neighbour.NS}
	if inet, err := tb.Internet(); err == nil {
		names = append(names, inet.NS)
	}
	if err := tb.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	left, err := netns.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(left, n) {
			t.Errorf("namespace %s survived Close", n)
		}
	}
	select {
	case <-sleeper.Exited():
	default:
		t.Errorf("%s still running after Close", sleeper)
	}
	if err := syscall.Kill(sleeper.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d of %s after Close: %v, want ESRCH", sleeper.Pid(), sleeper, err)
	}
	if _, err := os.Stat(tb.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir after Close: %v, want it gone", err)
	}
	if err := tb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := tb.AddNamespace("late"); !errors.Is(err, netns.ErrClosed) {
		t.Errorf("AddNamespace after Close: %v, want ErrClosed", err)
	}
}

// TestNewRemovesStale fakes what a crashed test binary leaves behind — a
// namespace of the scheme whose pid is dead, with a process inside — and
// checks that New removes both. It does not run in parallel with the other
// tests here, whose New would remove the fake as well.
func TestNewRemovesStale(t *testing.T) {
	netns.Require(t)
	name, exited := makeStale(t)
	tb, err := netns.New("fresh")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	left, err := netns.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(left, name) {
		t.Errorf("stale namespace %s survived New", name)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("process in stale namespace %s survived New", name)
	}
}
