package overlay_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/linktest"
	"github.com/ipopd/ipopd/topology"
	"go.uber.org/goleak"
)

// ipv4Frame is an Ethernet + IPv4 + UDP frame from srcMAC/src to
// dstMAC/dst carrying tag.
func ipv4Frame(dstMAC, srcMAC net.HardwareAddr, src, dst string, tag string) []byte {
	f := append(append([]byte(nil), dstMAC...), srcMAC...)
	f = append(f, 0x08, 0x00)
	ip := make([]byte, 28)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(tag)))
	s4, d4 := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	return append(append(f, ip...), tag...)
}

// garp is a gratuitous ARP from mac claiming ip.
func garp(mac net.HardwareAddr, ip string) []byte {
	f := append(bytes.Repeat([]byte{0xff}, 6), mac...)
	f = append(f, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2)
	a := netip.MustParseAddr(ip).As4()
	f = append(append(f, mac...), a[:]...)
	f = append(append(f, bytes.Repeat([]byte{0xff}, 6)...), a[:]...)
	return f
}

// TestSpoofedFramesRefused: a member whose certificate allows 10.254.0.3
// only cannot send as another node: frames with another's source IP
// (with its own MAC or the other's), a gratuitous ARP for another's
// address, and frames that take another node's MAC in use are all
// refused and counted at the receiver; its own and the others' honest
// frames go through.
func TestSpoofedFramesRefused(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ca, hub := linktest.NewCA(t), linktest.NewHub()
	var nodes []*linktest.Node
	for i := range 3 {
		nodes = append(nodes, linktest.Start(t, ca, hub, []string{"n1", "n2", "n3"}[i], linktest.Options{
			Ring:     topology.RingConfig{Successors: 2},
			MAC:      net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)},
			Prefixes: []netip.Prefix{netip.MustParsePrefix(netip.AddrFrom4([4]byte{10, 254, 0, byte(i + 1)}).String() + "/32")},
		}))
	}
	for _, n := range nodes {
		waitUp(t, n, 2)
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	mac1, mac2, mac3 := n1.TAP.HardwareAddr(), n2.TAP.HardwareAddr(), n3.TAP.HardwareAddr()

	// Honest: n1 to n2 (n2 learns n1's MAC with n1's address).
	honest := ipv4Frame(mac2, mac1, "10.254.0.1", "10.254.0.2", "from n1")
	n1.TAP.Inject(honest)
	receive(t, n2, honest)

	before := n2.Manager.Peers().Drops
	attacks := []struct {
		name, counter string
		frame         []byte
	}{
		{"n1's IP and MAC", "spoofed_source", ipv4Frame(mac2, mac1, "10.254.0.1", "10.254.0.2", "as n1")},
		{"n1's IP, own MAC", "spoofed_source", ipv4Frame(mac2, mac3, "10.254.0.1", "10.254.0.2", "as n1 too")},
		{"gratuitous ARP for n1's address", "spoofed_arp", garp(mac3, "10.254.0.1")},
		{"own IP, n1's MAC in use", "spoofed_mac", ipv4Frame(mac2, mac1, "10.254.0.3", "10.254.0.2", "takes n1's MAC")},
	}
	for _, a := range attacks {
		for range 20 {
			n3.TAP.Inject(a.frame)
		}
	}
	own := ipv4Frame(mac2, mac3, "10.254.0.3", "10.254.0.2", "from n3, honest")
	n3.TAP.Inject(own)
	// Everything n2 writes to its TAP until n3's honest frame (sent after
	// the attacks, on the same link, so processed after them).
	timeout := time.After(5 * time.Second)
wait:
	for {
		select {
		case f := <-n2.Received:
			if bytes.Equal(f, own) {
				break wait
			}
			for _, a := range attacks {
				if bytes.Equal(f, a.frame) {
					t.Errorf("%s: delivered", a.name)
				}
			}
		case <-timeout:
			t.Fatal("n3's honest frame never arrived")
		}
	}
	after := n2.Manager.Peers().Drops
	for _, a := range attacks {
		if got := after[a.counter] - before[a.counter]; got < 20 {
			t.Errorf("%s: %s counted %d of 20", a.name, a.counter, got)
		}
	}
	// Unicast to n1's MAC still goes to n1, not to the one who tried to
	// take it.
	toN1 := ipv4Frame(mac1, mac2, "10.254.0.2", "10.254.0.1", "to n1")
	n2.TAP.Inject(toN1)
	receive(t, n1, toN1)
	t.Logf("drops at n2: %v", after)
}
