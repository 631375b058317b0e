package overlay_test

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipopd/ipopd/overlay/linktest"
	"github.com/ipopd/ipopd/topology"
)

// eventually polls f every 20 ms until it returns nil or d has passed.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ringBuilt is nil once every node knows the others and its successor
// and chord links are up.
func ringBuilt(nodes []*linktest.Node) error {
	for _, n := range nodes {
		if st := n.Manager.Ring(); st.Known < len(nodes)-1 {
			return fmt.Errorf("%s knows %d nodes", n.Name, st.Known)
		}
	}
	return ringLinked(nodes, nil)
}

// ringLinked is nil once every node's successor and chord links are up,
// and none of them is gone.
func ringLinked(nodes []*linktest.Node, gone *linktest.Node) error {
	for _, n := range nodes {
		st := n.Manager.Ring()
		for _, r := range append(st.Successors, st.Chords...) {
			if gone != nil && r.Name == gone.Name {
				return fmt.Errorf("%s still has %s as a ring neighbour", n.Name, gone.Name)
			}
		}
		for _, r := range append(st.Successors, st.Chords...) {
			if !r.Up {
				return fmt.Errorf("%s: ring link to %s not up", n.Name, r.Name)
			}
		}
	}
	return nil
}

// linkRole is the role of n's up link to peer, "" without one.
func linkRole(n, peer *linktest.Node) string {
	for _, l := range n.Manager.Peers().Links {
		if l.Name == peer.Name && l.State == "up" {
			return l.Role
		}
	}
	return ""
}

// receive waits for a frame equal to want on n's TAP, skipping others
// (broadcasts of the ring's own traffic).
func receive(t *testing.T, n *linktest.Node, want []byte) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-n.Received:
			if bytes.Equal(got, want) {
				return
			}
		case <-timeout:
			t.Fatalf("%s: frame %x... never arrived", n.Name, want[:14])
		}
	}
}

// TestRingInProcess: six nodes in one process (real ICE and DTLS on
// loopback, fake TAPs, an in-memory rendezvous) build the ring, route a
// frame between two nodes without a link through the others, set up an
// on-demand link when traffic between them passes the threshold, move the
// traffic onto it, and close it once the traffic stops.
func TestRingInProcess(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first: runs after the nodes stopped
	start := time.Now()
	ca, hub := linktest.NewCA(t), linktest.NewHub()
	opts := linktest.Options{
		Ring:     topology.RingConfig{Successors: 1, Chords: 1},
		OnDemand: topology.OnDemandConfig{Threshold: 1_000_000, Idle: time.Second, MaxLinks: 2},
	}
	var nodes []*linktest.Node
	for i := range 6 {
		o := opts
		o.MAC = net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}
		nodes = append(nodes, linktest.Start(t, ca, hub, fmt.Sprintf("n%d", i+1), o))
	}
	eventually(t, 30*time.Second, "ring built", func() error { return ringBuilt(nodes) })
	t.Logf("ring built after %v", time.Since(start).Round(time.Millisecond))
	// Packets a peer sent before this node had the link's keys are held
	// and opened, not dropped.
	// Control messages between honest nodes all check.
	for _, n := range nodes {
		drops := n.Manager.Peers().Drops
		if d := drops["early_dropped"]; d != 0 {
			t.Errorf("%s dropped %d packets that came before its keys", n.Name, d)
		}
		if d := drops["bad_origin"] + drops["bad_control"]; d != 0 {
			t.Errorf("%s refused %d control messages of honest nodes: %v", n.Name, d, drops)
		}
	}

	// A pair with no link between them.
	var src, dst *linktest.Node
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b && linkRole(a, b) == "" && linkRole(b, a) == "" && src == nil {
				src, dst = a, b
			}
		}
	}
	if src == nil {
		t.Fatal("every pair is linked: the ring is a full mesh")
	}
	srcMAC, dstMAC := src.TAP.HardwareAddr(), dst.TAP.HardwareAddr()
	frame := func(from, to net.HardwareAddr, size int, tag string) []byte {
		f := append(append(append([]byte(nil), to...), from...), 0x88, 0xb5)
		f = append(f, tag...)
		return append(f, make([]byte, max(0, size-len(f)))...)
	}

	// dst announces itself (a broadcast, which reaches every node once),
	// so src learns which node its MAC is behind; then src's unicast to
	// it is routed through the ring.
	hello := frame(dstMAC, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 60, "hello")
	dst.TAP.Inject(hello)
	receive(t, src, hello)
	sentBefore := src.Manager.Peers().Routed["sent"]
	uni := frame(srcMAC, dstMAC, 60, "routed")
	src.TAP.Inject(uni)
	receive(t, dst, uni)
	// Routed, once: src's routed counter also counts control messages
	// (a hello answered meanwhile), so the copies are counted where they
	// arrive.
	if sent := src.Manager.Peers().Routed["sent"]; sent == sentBefore {
		t.Fatalf("%s sent the frame to %s, but not routed", src.Name, dst.Name)
	}
	for dup := time.After(300 * time.Millisecond); ; {
		select {
		case got := <-dst.Received:
			if bytes.Equal(got, uni) {
				t.Fatalf("%s got the frame routed from %s twice", dst.Name, src.Name)
			}
			continue
		case <-dup:
		}
		break
	}
	forwarded := uint64(0)
	for _, n := range nodes {
		forwarded += n.Manager.Peers().Routed["forwarded"]
	}
	t.Logf("%s -> %s routed; %d forwards on the way (all nodes so far)", src.Name, dst.Name, forwarded)

	// 4 Mbit/s from src to dst: above the 1 Mbit/s threshold.
	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				src.TAP.Inject(frame(srcMAC, dstMAC, 1000, fmt.Sprintf("bulk %d", i)))
			}
		}
	}()
	wanted := time.Now()
	eventually(t, 20*time.Second, "on-demand link up", func() error {
		if r := linkRole(src, dst); r != "on-demand" && linkRole(dst, src) != "on-demand" {
			return fmt.Errorf("link %s -> %s: role %q", src.Name, dst.Name, r)
		}
		return nil
	})
	t.Logf("on-demand link up %v after the traffic started", time.Since(wanted).Round(time.Millisecond))
	// Traffic moves onto it: src routes nothing more toward dst.
	time.Sleep(500 * time.Millisecond)
	r1 := src.Manager.Peers().Routed["sent"]
	time.Sleep(time.Second)
	if r2 := src.Manager.Peers().Routed["sent"]; r2 != r1 {
		t.Errorf("%s still routed %d packets with the direct link up", src.Name, r2-r1)
	}
	close(stop)
	<-pumped
	stopped := time.Now()
	eventually(t, 20*time.Second, "on-demand link closed", func() error {
		if r := linkRole(src, dst); r != "" {
			return fmt.Errorf("link %s -> %s still up as %q", src.Name, dst.Name, r)
		}
		return nil
	})
	t.Logf("on-demand link closed %v after the traffic stopped", time.Since(stopped).Round(time.Millisecond))

	// With the rendezvous gone, two nodes leave one after the other: the
	// ring repairs through the overlay alone. With one successor, a node
	// whose successor left may have no link nearer its new successor
	// (its others lie behind it); link signaling then goes through a
	// linked node that links the new successor (a relay).
	hub.SetDown(true)
	rest := nodes
	for range 2 {
		var leaver *linktest.Node
		var stay []*linktest.Node
		for _, n := range rest {
			if leaver == nil && n != src && n != dst {
				leaver = n
				continue
			}
			stay = append(stay, n)
		}
		left := time.Now()
		leaver.Stop()
		eventually(t, 20*time.Second, "ring repaired after "+leaver.Name+" left", func() error { return ringLinked(stay, leaver) })
		t.Logf("%s left: ring repaired after %v", leaver.Name, time.Since(left).Round(time.Millisecond))
		rest = stay
	}
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}
