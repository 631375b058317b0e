package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap/taptest"
)

// capture is a socket that keeps copies of what is sent.
type capture struct {
	mu   sync.Mutex
	pkts []nat.Packet
}

func (c *capture) WriteBatch(pkts []nat.Packet) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pkts {
		c.pkts = append(c.pkts, nat.Packet{Data: bytes.Clone(p.Data), Addr: p.Addr})
	}
	return len(pkts), nil
}

// livePair is a plane with one up link whose peer seals with send.
func livePair(t *testing.T) (p *Plane, peer *Peer, send *wire.Keyring, sock *capture, addr netip.AddrPort) {
	ca := newTestCA(t)
	dev := taptest.New("lv0", 1400, net.HardwareAddr{2, 0, 0, 0, 0, 1}, 64)
	t.Cleanup(func() { dev.Close() })
	sock = &capture{}
	p, _ = ca.plane(t, "self", Config{Socket: sock, TAP: dev})
	id := ca.identity(t, "peer")
	p.cfg.Directory.Add(&id.Peer)
	root := make([]byte, wire.RootLen)
	recv, err := wire.NewKeyring(root, true, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	send, _ = wire.NewKeyring(root, false, 0, time.Now())
	addr = netip.MustParseAddrPort("198.18.0.1:4000")
	peer = NewPeer(id.ID)
	peer.SetPath(&Path{Keys: recv, Remote: addr})
	peer.SetCert(&id.Peer)
	p.Publish(NewView([]Link{{Peer: peer, Addr: addr, Up: true}}, nil))
	return p, peer, send, sock, addr
}

// A keepalive is an empty sealed packet on the link's path; the other
// end takes it as a sign of life and nothing else.
func TestKeepalive(t *testing.T) {
	p, peer, send, sock, addr := livePair(t)
	p.Keepalive(peer)
	if len(sock.pkts) != 1 || sock.pkts[0].Addr != addr || len(sock.pkts[0].Data) != wire.Overhead {
		t.Fatalf("keepalive sent as %+v, want one %d-byte packet to %s", sock.pkts, wire.Overhead, addr)
	}
	now := time.Now().Truncate(time.Millisecond)
	p.Tick(now)
	ka, _ := send.Seal(nil, 0, nil)
	p.NewReceiver().Receive([]nat.Packet{{Data: ka, Addr: addr}})
	if !peer.Heard().Equal(now) || peer.Stats.RxPackets.Load() != 1 {
		t.Errorf("after a keepalive: heard %v (want %v), rx %d", peer.Heard(), now, peer.Stats.RxPackets.Load())
	}
	for k, v := range p.Drops() {
		if v != 0 {
			t.Errorf("a keepalive counted as %s", k)
		}
	}
	if p.tapStats.txFrames.Load() != 0 {
		t.Error("a keepalive reached the TAP")
	}
	// Forged or replayed, it is not a sign of life.
	p.Tick(now.Add(time.Second))
	p.NewReceiver().Receive([]nat.Packet{{Data: ka, Addr: addr}})
	bad := bytes.Clone(ka)
	bad[len(bad)-1] ^= 1
	p.NewReceiver().Receive([]nat.Packet{{Data: bad, Addr: addr}})
	if !peer.Heard().Equal(now) {
		t.Errorf("a replayed or forged keepalive marked the peer heard at %v", peer.Heard())
	}
}

// A peer's packets from a new address are taken once they authenticate
// under its keys, and link control hears where it moved; strangers'
// packets, replays and packets while the peer is heard on its own
// address are not.
func TestRoaming(t *testing.T) {
	p, peer, send, _, addr := livePair(t)
	var moved []netip.AddrPort
	p.HandleRoam(func(pr *Peer, to netip.AddrPort) {
		if pr != peer {
			t.Errorf("roam for %v", pr.ID.Short())
		}
		moved = append(moved, to)
	})
	r := p.NewReceiver()
	now := time.Now()
	p.Tick(now)
	first, _ := send.Seal(nil, 0, nil)
	r.Receive([]nat.Packet{{Data: first, Addr: addr}}) // heard now
	newAddr := netip.MustParseAddrPort("198.18.0.9:5555")
	ka, _ := send.Seal(nil, 0, nil)
	r.Receive([]nat.Packet{{Data: ka, Addr: newAddr}})
	if len(moved) != 0 || p.counters.unknownSource.Load() != 1 {
		t.Fatalf("a peer heard just now on its address was moved (%v), unknown_source %d", moved, p.counters.unknownSource.Load())
	}
	p.Tick(now.Add(2 * roamQuiet)) // the peer went quiet
	stranger := make([]byte, 60)
	stranger[0] = wire.TypeData
	r.Receive([]nat.Packet{{Data: stranger, Addr: newAddr}, {Data: first, Addr: newAddr}})
	if len(moved) != 0 || p.counters.unknownSource.Load() != 3 {
		t.Fatalf("a stranger's packet or a replay moved the link (%v), unknown_source %d", moved, p.counters.unknownSource.Load())
	}
	ka2, _ := send.Seal(nil, 0, nil)
	r.Receive([]nat.Packet{{Data: ka, Addr: newAddr}, {Data: ka2, Addr: newAddr}})
	if len(moved) < 1 || moved[0] != newAddr || p.Routed()["roamed"] < 1 {
		t.Fatalf("the peer's packets from %s: moved %v, roamed %d", newAddr, moved, p.Routed()["roamed"])
	}
	if !peer.Heard().Equal(time.UnixMilli(now.Add(2 * roamQuiet).UnixMilli())) {
		t.Errorf("the roamed packet did not mark the peer heard: %v", peer.Heard())
	}
}
