package dataplane

import (
	"crypto/sha256"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/topology"
)

// sink is a Socket that keeps what is sent, by address.
type sink struct {
	mu   sync.Mutex
	sent map[netip.AddrPort]int
}

func (k *sink) WriteBatch(pkts []nat.Packet) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range pkts {
		k.sent[p.Addr]++
	}
	return len(pkts), nil
}

func (k *sink) take() map[netip.AddrPort]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.sent
	k.sent = map[netip.AddrPort]int{}
	return out
}

// floodPlane is a plane with three up links (a, b, c) whose packets go to
// a sink, and routes that know of a far node only through a flood.
func floodPlane(t *testing.T) (*Plane, *sink, []*Peer, map[nodeid.ID]netip.AddrPort, *testCA) {
	k := &sink{sent: map[netip.AddrPort]int{}}
	c := newTestCA(t)
	p, _ := c.plane(t, "self", Config{Socket: k})
	self := p.self
	var links []Link
	var peers []*Peer
	var ids []nodeid.ID
	addrs := map[nodeid.ID]netip.AddrPort{}
	for i, name := range []string{"a", "b", "c"} {
		root := make([]byte, wire.RootLen)
		for j := range root {
			root[j] = byte(j*7 + i)
		}
		keys, err := wire.NewKeyring(root, true, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		peer := NewPeer(sha256.Sum256([]byte(name)))
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 4000)
		peer.SetPath(&Path{Keys: keys, Remote: addr})
		links = append(links, Link{Peer: peer, Addr: addr, Up: true})
		peers, ids = append(peers, peer), append(ids, peer.ID)
		addrs[peer.ID] = addr
	}
	p.Publish(NewView(links, topology.NewRoutes(self, ids, nil)))
	return p, k, peers, addrs, c
}

// TestFlood: a control message for a node no route reaches is flooded on
// every link; a node that receives a flood delivers it once if it is for
// it, passes it only to the destination when linked to it, and otherwise
// to every link but the one it came on; duplicates are dropped and
// counted.
func TestFlood(t *testing.T) {
	p, k, peers, addrs, ca := floodPlane(t)
	var got [][]byte
	p.HandleControl(KindSignal, func(_ nodeid.ID, msg []byte, direct bool) error {
		if direct {
			t.Error("a flooded message delivered as direct")
		}
		got = append(got, append([]byte(nil), msg...))
		return nil
	})
	// A node right next to self on the ring: no link is nearer it, and
	// no link announced one to it, so neither a route nor a relay.
	far := p.self
	far[31] ^= 1
	if _, _, ok := p.View().Routes().Route(far); ok {
		t.Fatal("far is routable: the setup is wrong")
	}
	if err := p.SendControl(far, []byte{KindSignal, 'x'}); err != nil {
		t.Fatalf("SendControl to an unroutable node: %v", err)
	}
	if sent := k.take(); len(sent) != 3 {
		t.Errorf("origin flooded to %d links, want 3: %v", len(sent), sent)
	}

	srcID := ca.identity(t, "src")
	src, signer := srcID.ID, trust.NewSigner(srcID, nil)
	flood := func(dst nodeid.ID, id uint64, ttl uint8) []byte {
		h := topology.Route{Src: src, Dst: dst, TTL: ttl, Control: true, Flood: true}
		b, _ := h.AppendBinary(nil)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, byte(id))
		env, err := signer.Seal(dst, []byte{KindSignal, 'y'}, true)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, env...)
	}
	var s scratch
	v := p.View()
	p.routed(&s, v, peers[0], flood(p.self, 1, 5))
	p.routed(&s, v, peers[1], flood(p.self, 1, 5)) // the same flood by another way
	if len(got) != 1 || string(got[0]) != string([]byte{KindSignal, 'y'}) || p.counters.floodDup.Load() != 1 {
		t.Errorf("delivered %q, %d duplicates", got, p.counters.floodDup.Load())
	}
	p.drain(&s)
	k.take()

	p.routed(&s, v, peers[0], flood(far, 2, 5))
	p.drain(&s)
	if sent := k.take(); len(sent) != 2 || sent[addrs[peers[0].ID]] != 0 {
		t.Errorf("passed on to %v, want every link but a", sent)
	}
	p.routed(&s, v, peers[0], flood(peers[2].ID, 3, 5))
	p.drain(&s)
	if sent := k.take(); len(sent) != 1 || sent[addrs[peers[2].ID]] != 1 {
		t.Errorf("flood for linked c went to %v, want c only", sent)
	}
	p.routed(&s, v, peers[0], flood(far, 4, 1))
	p.drain(&s)
	if sent := k.take(); len(sent) != 0 || p.counters.expired.Load() != 1 {
		t.Errorf("TTL 1: passed on to %v, expired %d", sent, p.counters.expired.Load())
	}
	// A frame is never flooded: no route means no_route.
	frame := make([]byte, 60)
	frame[0] = 2
	if p.toNode(&s, v, far, 0, frame) {
		t.Error("a frame to an unroutable node was sent")
	}
}

func TestFloodsSeenBounded(t *testing.T) {
	var f floods
	f.init()
	src := nodeid.ID{1}
	for i := range uint64(3 * maxFloodsSeen) {
		if !f.first(src, i) {
			t.Fatalf("flood %d seen before", i)
		}
	}
	if len(f.seen) != maxFloodsSeen {
		t.Errorf("%d flood IDs kept, bound %d", len(f.seen), maxFloodsSeen)
	}
	if f.first(src, 3*maxFloodsSeen-1) {
		t.Error("the newest flood is not remembered")
	}
}

// TestBroadcastArcAndRate: a broadcast copy whose arc ends at the
// receiver (only the originator may cover the whole ring) is refused, not
// fanned out again; and one link's broadcasts are rate-limited.
func TestBroadcastArcAndRate(t *testing.T) {
	p, k, peers, _, ca := floodPlane(t)
	src := ca.identity(t, "src")
	p.cfg.Directory.Add(&src.Peer)
	frame := make([]byte, 60)
	for i := range 6 {
		frame[i] = 0xff
	}
	bcast := func(limit nodeid.ID) []byte {
		h := topology.Route{Src: src.ID, Dst: limit, TTL: 5, Broadcast: true}
		b, _ := h.AppendBinary(nil)
		return append(b, frame...)
	}
	var s scratch
	v := p.View()
	p.routed(&s, v, peers[0], bcast(p.self))
	p.drain(&s)
	if sent := k.take(); len(sent) != 0 || p.counters.badRoute.Load() != 1 {
		t.Errorf("arc ending here: fanned out to %v, bad_route %d", sent, p.counters.badRoute.Load())
	}
	for range 3 * broadcastBurst {
		p.routed(&s, v, peers[0], bcast(src.ID))
		s.frames, s.pkts, s.used = s.frames[:0], s.pkts[:0], 0
	}
	if got := p.counters.rateLimited.Load(); got < broadcastBurst || got > 2*broadcastBurst+100 {
		t.Errorf("rate-limited %d of %d broadcasts (burst %d)", got, 3*broadcastBurst, broadcastBurst)
	}
}
