package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/control"
	"golang.org/x/sys/unix"
)

// switchNet: two LANs, each a bridge with two plain hosts (no ipopd) and a
// switch-mode ipopd bridging it into the overlay, plus one host-mode node.
//
//	LAN A: a1 10.254.1.1, a2 10.254.1.2 ── br0 ── ipopd "swa" (switch)
//	LAN B: b1 10.254.2.1, b2 10.254.2.2 ── br0 ── ipopd "swb" (switch)
//	host-mode ipopd "h" 10.254.0.9
type switchNet struct {
	o          *overlay
	lanA, lanB *lab.LAN
	swa, swb   *lab.Node
	h          *lab.Node
	hosts      map[string]*netns.Host
	addrs      map[string][2]string // name → IPv4, IPv6
}

// newSwitchNet builds it. A switch-mode node's certificate allows its
// LAN's range (what its node may send from); with roaming, both LANs'
// ranges, so that hosts may move between them.
func newSwitchNet(t *testing.T, roaming bool) *switchNet {
	o := newOverlay(t)
	s := &switchNet{o: o, hosts: map[string]*netns.Host{}, addrs: map[string][2]string{}}
	var err error
	for i, side := range []string{"a", "b"} {
		gate := o.public(t, "g"+side)
		lan, err := lab.AddLAN(o.tb, gate)
		if err != nil {
			t.Fatal(err)
		}
		for j := 1; j <= 2; j++ {
			name := fmt.Sprintf("%s%d", side, j)
			v4, v6 := fmt.Sprintf("10.254.%d.%d", i+1, j), fmt.Sprintf("fd54::%d:%d", i+1, j)
			h, err := lan.AddHost(name, v4+"/16", v6+"/64")
			if err != nil {
				t.Fatal(err)
			}
			s.hosts[name], s.addrs[name] = h, [2]string{v4, v6}
		}
		certIPs := []string{fmt.Sprintf("10.254.%d.0/24", i+1), fmt.Sprintf("fd54::%d:0/112", i+1)}
		if roaming {
			certIPs = []string{"10.254.1.0/24", "10.254.2.0/24", "fd54::1:0/112", "fd54::2:0/112"}
		}
		n, err := o.l.Start(gate, lab.Spec{Name: "sw" + side, Mode: "switch", Bridge: "br0", Rendezvous: o.rv, CertIPs: certIPs,
			Config: map[string]any{"ice": map[string]any{"port": 4000, "interfaces": []string{"eth0"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if side == "a" {
			s.lanA, s.swa = lan, n
		} else {
			s.lanB, s.swb = lan, n
		}
	}
	s.h = o.node(t, o.public(t, "h"), "h", 9)
	s.hosts["h"], s.addrs["h"] = s.h.Host, [2]string{"10.254.0.9", "fd54::9"}
	for _, n := range []*lab.Node{s.swa, s.swb, s.h} {
		var others []string
		for _, m := range []string{"swa", "swb", "h"} {
			if m != n.Name {
				others = append(others, m)
			}
		}
		if _, err = n.WaitUp(30*time.Second, others...); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func ping(h *netns.Host, dst string, count int) error {
	out, err := h.Run("ping", "-n", "-q", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", dst)
	if m := lossRe.FindStringSubmatch(out); err != nil || m == nil || m[1] != m[2] {
		return fmt.Errorf("ping %s: %v %s", dst, err, out)
	}
	return nil
}

// TestSwitchModeLANs: every host pings every other host and the host-mode
// node, IPv4 and IPv6; link-local multicast from LAN A is seen on LAN B; a
// LAN multicast stream reaches a subscriber on LAN B and on the host-mode
// node and no unsubscribed host's interface.
func TestSwitchModeLANs(t *testing.T) {
	s := newSwitchNet(t, false)
	names := []string{"a1", "a2", "b1", "b2", "h"}
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			for fam := range 2 {
				if err := ping(s.hosts[from], s.addrs[to][fam], 2); err != nil {
					t.Errorf("%s → %s: %v", from, to, err)
				}
			}
		}
	}

	// Link-local multicast (mDNS groups) crosses from LAN A to LAN B.
	for _, g := range []string{"224.0.0.251", "ff02::fb"} {
		r, err := lab.Join(s.hosts["b1"], "eth0", g, 5353, "")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := lab.Send(s.hosts["a1"], "eth0", g, 5353, 20, 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Second, "b1 hears "+g+" from LAN A", func() error {
			if r.Got() != 20 {
				return fmt.Errorf("got %d of 20", r.Got())
			}
			return nil
		})
		r.Close()
	}

	// A stream from a1 to 239.7.7.7: b1 (LAN B) and h subscribe; b2 and a2 do not.
	capB2, err := s.hosts["b2"].Start("tcpdump", nil, "tcpdump", "-n", "-l", "-i", "eth0", "udp and dst host 239.7.7.7")
	if err != nil {
		t.Fatal(err)
	}
	capA2, err := s.hosts["a2"].Start("tcpdump", nil, "tcpdump", "-n", "-l", "-i", "eth0", "udp and dst host 239.7.7.7")
	if err != nil {
		t.Fatal(err)
	}
	rb1, err := lab.Join(s.hosts["b1"], "eth0", "239.7.7.7", 5004, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rb1.Close()
	rh := join(t, s.h, "239.7.7.7", 5004, "")
	waitSubscribers(t, s.swa, "239.7.7.7", "h", "swb")
	time.Sleep(time.Second) // tcpdump attaches
	if err := lab.Send(s.hosts["a1"], "eth0", "239.7.7.7", 5004, 100, 3*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b1 and h receive the LAN A stream", func() error {
		if rb1.Got() != 100 || rh.Got() != 100 {
			return fmt.Errorf("b1 %d, h %d of 100", rb1.Got(), rh.Got())
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	capB2.Stop()
	capA2.Stop()
	for name, c := range map[string]*netns.Proc{"b2": capB2, "a2": capA2} {
		if strings.Contains(c.Log(), "239.7.7.7") {
			t.Errorf("unsubscribed %s's interface saw the stream:\n%s", name, c.Log())
		}
	}
}

// TestSwitchModeHostMoves: a host moves from LAN A to LAN B (same MAC and
// addresses) and announces itself with gratuitous ARP; traffic to it from
// the host-mode node follows within 2 s.
func TestSwitchModeHostMoves(t *testing.T) {
	s := newSwitchNet(t, true)
	a2 := s.hosts["a2"]
	if err := ping(s.h.Host, s.addrs["a2"][0], 2); err != nil {
		t.Fatal(err)
	}
	// Unplug a2 from LAN A and plug it into LAN B, keeping its MAC.
	mac, err := a2.Run("cat", "/sys/class/net/eth0/address")
	if err != nil {
		t.Fatal(err)
	}
	mac = strings.TrimSpace(mac)
	if _, err := a2.Run("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := s.o.tb.Veth(a2, "eth0", s.lanB.Gate, "moved"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		h    *netns.Host
		args []string
	}{
		{s.lanB.Gate, []string{"ip", "link", "set", "moved", "master", "br0"}},
		{a2, []string{"ip", "link", "set", "eth0", "down"}},
		{a2, []string{"ip", "link", "set", "eth0", "address", mac}},
		{a2, []string{"ip", "link", "set", "eth0", "up"}},
		{a2, []string{"ip", "addr", "add", s.addrs["a2"][0] + "/16", "dev", "eth0"}},
		{a2, []string{"ip", "addr", "add", s.addrs["a2"][1] + "/64", "dev", "eth0", "nodad"}},
	} {
		if _, err := step.h.Run(step.args...); err != nil {
			t.Fatal(err)
		}
	}
	// Announce (arping runs on; it waits for answers that never come).
	moved := time.Now()
	if _, err := a2.Start("arping", nil, "arping", "-U", "-c", "3", "-I", "eth0", s.addrs["a2"][0]); err != nil {
		t.Fatal(err)
	}
	deadline := moved.Add(2 * time.Second)
	for {
		out, _ := s.h.Host.Run("ping", "-n", "-c", "1", "-W", "0.3", s.addrs["a2"][0])
		if m := lossRe.FindStringSubmatch(out); m != nil && m[2] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic to a2 did not follow it to LAN B within 2 s")
		}
	}
	t.Logf("traffic to the moved host flows again %s after its gratuitous ARP", time.Since(moved).Round(10*time.Millisecond))
}

func neighbourStats(t *testing.T, n *lab.Node) map[string]uint64 {
	t.Helper()
	out, err := n.Ctl("arp", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var nb control.Neighbours
	if err := jsonUnmarshal(out, &nb); err != nil {
		t.Fatal(err)
	}
	return nb.Stats
}

// TestSwitchModeARPAnsweredLocally: after a first exchange, a repeated ARP
// request (and neighbour solicitation) from LAN A for a host on LAN B is
// answered by LAN A's node; no request for it crosses the overlay.
func TestSwitchModeARPAnsweredLocally(t *testing.T) {
	s := newSwitchNet(t, false)
	a1, b1 := s.hosts["a1"], s.addrs["b1"]
	for fam := range 2 {
		if err := ping(a1, b1[fam], 2); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // adverts go out every second
	capture, err := s.swb.Host.Start("tcpdump-b", nil, "tcpdump", "-n", "-l", "-i", "ipop0", "arp or icmp6")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	before := neighbourStats(t, s.swa)["answered"]
	if _, err := a1.Run("ip", "neigh", "flush", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	for fam := range 2 {
		if err := ping(a1, b1[fam], 2); err != nil {
			t.Fatal(err)
		}
	}
	if after := neighbourStats(t, s.swa)["answered"]; after < before+2 {
		t.Errorf("swa answered %d requests after the flush, want at least 2 (ARP and NS)", after-before)
	}
	time.Sleep(300 * time.Millisecond)
	capture.Stop()
	for _, line := range strings.Split(capture.Log(), "\n") {
		if strings.Contains(line, "who-has "+b1[0]) || (strings.Contains(line, "neighbor solicitation") && strings.Contains(line, "who has "+b1[1])) {
			t.Errorf("a request for b1 crossed the overlay to swb:\n%s", line)
		}
	}
	if out, err := s.swa.Ctl("arp"); err != nil || !strings.Contains(out, b1[0]) || !strings.Contains(out, "swb") {
		t.Errorf("ipopctl arp on swa: %v\n%s", err, out)
	}
}

// TestSwitchModeUnderAnotherQuerier: a router on LAN A (a1, sending
// IGMPv3 general queries every 2 s from its address, so ipopd defers to
// it) is the querier, and the bridge's router-port timer is shortened to
// 10 s (mcast_querier_interval). Past it, multicast still crosses both
// ways: ipopd keeps the TAP a permanent router port. Before, LAN →
// overlay stopped once ipopd's own queries had stopped for that long.
func TestSwitchModeUnderAnotherQuerier(t *testing.T) {
	s := newSwitchNet(t, false)
	if out, err := s.swa.Host.Run("ip", "link", "set", "br0", "type", "bridge", "mcast_querier_interval", "1000"); err != nil {
		t.Fatalf("bridge timer: %v\n%s", err, out)
	}
	// Let swa send one more query of its own, so that the bridge times
	// its TAP's router role with the new interval.
	out, _ := s.swa.Ctl("groups", "--json")
	var gs control.Groups
	if err := jsonUnmarshal(out, &gs); err != nil || len(gs.Queriers) == 0 || !gs.Queriers[0].Querier {
		t.Fatalf("swa is not the querier before a1 starts: %v %s", err, out)
	}
	wait := time.Duration(gs.Queriers[0].NextQuery) + time.Second
	if wait > 45*time.Second {
		t.Fatalf("swa's next query in %s", wait)
	}
	time.Sleep(wait)
	stop := make(chan struct{})
	defer close(stop)
	a1 := s.hosts["a1"]
	queries := make(chan error, 1)
	go func() {
		queries <- a1.Do(func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			q := &igmp.Message{Type: igmp.TypeIGMPQuery, Version: 3, Group: netip.IPv4Unspecified(), MaxRespCode: 10, QRV: 2, QQIC: 2}
			f, err := q.Frame(ifi.HardwareAddr, netip.MustParseAddr(s.addrs["a1"][0]), netip.MustParseAddr("224.0.0.1"))
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
			for {
				if err := unix.Sendto(fd, f, 0, to); err != nil {
					return err
				}
				select {
				case <-stop:
					return nil
				case <-time.After(2 * time.Second):
				}
			}
		})
	}()
	eventually(t, 10*time.Second, "swa defers to a1's queries", func() error {
		out, _ := s.swa.Ctl("groups")
		if !strings.Contains(out, "IGMP querier: "+s.addrs["a1"][0]+" (v3)") {
			return fmt.Errorf("%s", strings.SplitN(out, "\n", 2)[0])
		}
		return nil
	})
	time.Sleep(12 * time.Second) // past the router port timer
	select {
	case err := <-queries:
		t.Fatalf("a1's querier stopped: %v", err)
	default:
	}
	// LAN → overlay.
	rh := join(t, s.h, "239.7.7.8", 5005, "")
	waitSubscribers(t, s.swa, "239.7.7.8", "h")
	if err := lab.Send(a1, "eth0", "239.7.7.8", 5005, 50, 3*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "h receives a1's stream", func() error {
		if rh.Got() != 50 {
			return fmt.Errorf("%d of 50", rh.Got())
		}
		return nil
	})
	// Overlay → LAN.
	ra2, err := lab.Join(s.hosts["a2"], "eth0", "239.7.7.9", 5005, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ra2.Close()
	waitSubscribers(t, s.h, "239.7.7.9", "swa")
	send(t, s.h, "239.7.7.9", 5005, 50, 3*time.Millisecond)
	eventually(t, 5*time.Second, "a2 receives h's stream", func() error {
		if ra2.Got() != 50 {
			return fmt.Errorf("%d of 50", ra2.Got())
		}
		return nil
	})
}
