package overlay

import (
	"crypto/sha256"
	"testing"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// routedManager is a manager with no links but a routing view naming
// three other nodes, so that routed() and control() run their decisions;
// its tasks are drained so posts never block.
func routedManager(tb testing.TB) (*Manager, []nodeid.ID) {
	self := nodeid.ID(sha256.Sum256([]byte("self")))
	m := NewManager(Config{Identity: &identity.Identity{Peer: identity.Peer{ID: self}}, MTU: 1400})
	var peers []nodeid.ID
	for _, s := range []string{"a", "b", "c"} {
		peers = append(peers, nodeid.ID(sha256.Sum256([]byte(s))))
	}
	m.snap.Store(&snapshot{routes: topology.NewRoutes(self, peers, nil)})
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-m.tasks:
			case <-stop:
				return
			}
		}
	}()
	tb.Cleanup(func() { close(stop) })
	return m, peers
}

// TestRoutedVerdicts: a routed packet for this node is delivered, one for
// another node with no link to the next hop is counted as no route, a
// header from this node itself or a malformed one is a bad route, and an
// expired TTL is counted; nothing panics and nothing is written.
func TestRoutedVerdicts(t *testing.T) {
	m, peers := routedManager(t)
	self := m.self
	frame := make([]byte, 60)
	frame[0] = 0x02 // unicast destination
	pkt := func(h topology.Route, payload []byte) []byte {
		b, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, payload...)
	}
	var s scratch
	if f := m.routed(&s, pkt(topology.Route{Src: peers[0], Dst: self, TTL: 5}, frame)); len(f) != len(frame) {
		t.Errorf("frame for us: got %d bytes", len(f))
	}
	if m.counters.routedDelivered.Load() != 1 {
		t.Errorf("delivered = %d", m.counters.routedDelivered.Load())
	}
	far := nodeid.ID(sha256.Sum256([]byte("far away")))
	if f := m.routed(&s, pkt(topology.Route{Src: peers[0], Dst: far, TTL: 5}, frame)); f != nil {
		t.Error("a packet for another node was delivered here")
	}
	if f := m.routed(&s, pkt(topology.Route{Src: self, Dst: peers[0], TTL: 5}, frame)); f != nil || m.counters.badRoute.Load() != 1 {
		t.Errorf("own packet back: bad_route = %d", m.counters.badRoute.Load())
	}
	if f := m.routed(&s, []byte{0x20, 0, 1}); f != nil || m.counters.badRoute.Load() != 2 {
		t.Errorf("truncated header: bad_route = %d", m.counters.badRoute.Load())
	}
	m.routed(&s, pkt(topology.Route{Src: peers[0], Dst: far, TTL: 1}, frame))
	if m.counters.expired.Load()+m.counters.noRoute.Load() < 2 {
		t.Errorf("far packets: expired %d, no route %d", m.counters.expired.Load(), m.counters.noRoute.Load())
	}
	if len(s.pkts) != 0 {
		t.Errorf("%d packets built with no link up", len(s.pkts))
	}
}

// FuzzRouted feeds decrypted payloads (what an authenticated but
// misbehaving member could send) to the routed-packet and control paths.
func FuzzRouted(f *testing.F) {
	h := topology.Route{Src: nodeid.ID(sha256.Sum256([]byte("a"))), Dst: nodeid.ID(sha256.Sum256([]byte("self"))), TTL: 3, Control: true}
	b, _ := h.AppendBinary(nil)
	f.Add(append(b, ctlSignal, '{', '}'))
	f.Add(append(b, ctlRing, 0x10, 0))
	h.Control, h.Broadcast = false, true
	b, _ = h.AppendBinary(nil)
	f.Add(append(b, make([]byte, 60)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _ := routedManager(t)
		var s scratch
		m.routed(&s, data)
		m.control(h.Src, data, true)
	})
}
