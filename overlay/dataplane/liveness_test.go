package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap/taptest"
	"github.com/ipopd/ipopd/topology"
)

// capture is a socket that keeps copies of what is sent.
type capture struct {
	mu   sync.Mutex
	pkts []nat.Packet
}

// reset forgets what was sent (goroutines of the plane may send too).
func (c *capture) reset() {
	c.mu.Lock()
	c.pkts = c.pkts[:0]
	c.mu.Unlock()
}

// snapshot is a copy of what was sent so far.
func (c *capture) snapshot() []nat.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
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
func livePair(t testing.TB) (p *Plane, peer *Peer, send *wire.Keyring, sock *capture, addr netip.AddrPort) {
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

// Fast liveness: a link this node sends on is probed every probeEvery
// (an idle one never); a peer not heard is suspect after suspectAfter
// and clear again once heard; probes are answered at once, with a bound,
// and a probe of the wrong size or kind is refused.
func TestFastLiveness(t *testing.T) {
	p, peer, send, sock, addr := livePair(t)
	var calls []bool
	var ws scratch
	watch := func(at time.Time) { p.watch(&ws, at, func(_ *Peer, s bool) { calls = append(calls, s) }) }
	probes := func() int {
		n := 0
		for _, pkt := range sock.pkts {
			if len(pkt.Data) == wire.Overhead+wire.ProbeLen && pkt.Data[1] == wire.FlagProbe {
				n++
			}
		}
		return n
	}
	t0 := time.Now().Truncate(time.Millisecond)
	p.Tick(t0)
	ka, _ := send.Seal(nil, 0, nil)
	p.NewReceiver().Receive([]nat.Packet{{Data: ka, Addr: addr}}) // heard at t0

	// Idle: silent for long, but nothing sent, so nothing probed.
	watch(t0.Add(2 * time.Second))
	if probes() != 0 || len(calls) != 0 {
		t.Fatalf("idle link: %d probes, suspect calls %v", probes(), calls)
	}

	// Sending, and silent: probed every probeEvery, suspect at suspectAfter.
	t1 := t0.Add(3 * time.Second)
	p.Tick(t1)
	heard := t1
	p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, 0, nil), Addr: addr}})
	sock.pkts = nil
	var s scratch
	p.seal(&s, peer, peer.Path(), 0, frame6())
	p.drain(&s)
	for ms := 50; ms <= 1000; ms += 50 {
		watch(heard.Add(time.Duration(ms) * time.Millisecond))
		if ms < 700 && len(calls) != 0 {
			t.Fatalf("suspect %d ms into the silence", ms)
		}
	}
	if len(calls) != 1 || !calls[0] || p.Routed()["routed_around"] != 1 || peer.Quality().Around != "silent" {
		t.Fatalf("suspect calls %v, routed_around %d, quality %+v; want one suspicion", calls, p.Routed()["routed_around"], peer.Quality())
	}
	if n := probes(); n != 20 {
		t.Errorf("%d probes in 1 s of sending, want one every 50 ms", n)
	}

	// Heard again: clear.
	t2 := heard.Add(1100 * time.Millisecond)
	p.Tick(t2)
	p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, 0, nil), Addr: addr}})
	watch(t2.Add(50 * time.Millisecond))
	if len(calls) != 2 || calls[1] || peer.Quality().Around != "" {
		t.Fatalf("after the peer was heard: suspect calls %v, quality %+v", calls, peer.Quality())
	}

	// A link idle for 2 s that starts sending is suspect only once four
	// probes have gone unanswered (the fourth for probeEvery), not at once.
	calls = nil
	t3 := t2.Add(2 * time.Second)
	p.advance(t3.UnixMilli())
	p.seal(&s, peer, peer.Path(), 0, frame6())
	p.drain(&s)
	for i := 1; i <= 5; i++ {
		watch(t3.Add(time.Duration(i) * probeEvery))
		if want := i == 5; len(calls) == 1 != want {
			t.Fatalf("%d probes into sending on a silent link: suspect calls %v", i, calls)
		}
	}

	// The peer's probes are answered, within answerBurst at once: an
	// empty one with a keepalive, a ProbeAsk with its number back.
	sock.pkts = nil
	p.Tick(t3.Add(time.Second))
	ask := []byte{wire.ProbeAsk, 0xde, 0xad, 0xbe, 0xef}
	p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, wire.FlagProbe, nil), Addr: addr}})
	p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, wire.FlagProbe, ask), Addr: addr}})
	if len(sock.pkts) != 2 || len(sock.pkts[0].Data) != wire.Overhead || sock.pkts[0].Data[1] != 0 {
		t.Fatalf("answers to two probes: %d packets, want a keepalive and an answer", len(sock.pkts))
	}
	got, flags, err := send.Open(nil, sock.pkts[1].Data)
	if err != nil || flags != wire.FlagProbe || !bytes.Equal(got, []byte{wire.ProbeAnswer, 0xde, 0xad, 0xbe, 0xef}) {
		t.Fatalf("answer to a ProbeAsk: %x flags %#x %v", got, flags, err)
	}
	for range answerBurst + 2 {
		p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, wire.FlagProbe, ask), Addr: addr}})
	}
	if n := p.Drops()["probe_limited"]; n < 2 || len(sock.pkts) > 2+answerBurst {
		t.Errorf("answers to %d probes at once: %d packets, probe_limited %d", answerBurst+2, len(sock.pkts)-2, n)
	}
	for _, bad := range [][]byte{[]byte("payload"), {wire.ProbeAsk, 1, 2, 3}, {9, 0, 0, 0, 1}} {
		p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, wire.FlagProbe, bad), Addr: addr}})
	}
	if p.Drops()["bad_probe"] != 3 || p.tapStats.txFrames.Load() != 0 {
		t.Errorf("probes of a wrong size or kind: bad_probe %d (want 3), frames to the TAP %d", p.Drops()["bad_probe"], p.tapStats.txFrames.Load())
	}
}

// TestLossyLink: a link that loses 40% of its probes (the peer's underlay
// drops packets, but the peer is heard) is routed around within 16
// probes, measured (loss, round trip) for the status, and routed through
// again once it loses no more; a node with one up link never marks it
// (its own underlay may be the lossy one), and says so once.
func TestLossyLink(t *testing.T) {
	for _, links := range []int{2, 1} {
		p, peer, send, sock, addr := livePair(t)
		if links == 2 {
			other := NewPeer(nodeid.ID{9})
			other.SetPath(&Path{Keys: peer.Path().Keys, Remote: netip.MustParseAddrPort("198.18.0.2:4000")})
			p.Publish(NewView([]Link{{Peer: peer, Addr: addr, Up: true}, {Peer: other, Addr: other.Path().Remote, Up: true}}, nil))
		}
		var calls []bool
		var ws scratch
		at := time.Now().Truncate(time.Millisecond)
		p.micros = func() int64 { return at.Add(time.Millisecond).UnixMicro() } // answers come 1 ms after
		p.Tick(at)
		p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, 0, nil), Addr: addr}})
		var s scratch
		// step: 50 ms on; the frame keeps the link busy, the peer answers
		// each probe of this round unless lose says not, 1 ms later.
		step := func(lose func(n uint32) bool) {
			at = at.Add(probeEvery)
			p.Tick(at)
			p.seal(&s, peer, peer.Path(), 0, frame6())
			p.drain(&s)
			sock.pkts = nil
			p.watch(&ws, at, func(pe *Peer, sus bool) {
				if pe == peer {
					calls = append(calls, sus)
				}
			})
			for _, pkt := range sock.pkts {
				if pkt.Addr != addr {
					continue
				}
				f, flags, err := send.Open(nil, pkt.Data)
				if err != nil || flags != wire.FlagProbe || len(f) != wire.ProbeLen {
					continue
				}
				n := binary.BigEndian.Uint32(f[1:])
				if lose(n) {
					continue
				}
				ans := append([]byte{wire.ProbeAnswer}, f[1:]...)
				p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, send, wire.FlagProbe, ans), Addr: addr}})
			}
		}
		for range 20 {
			step(func(uint32) bool { return false })
		}
		if q := peer.Quality(); q.Lost != 0 || q.RTT <= 0 || q.Around != "" || len(calls) != 0 {
			t.Fatalf("%d links, no loss: quality %+v, calls %v", links, q, calls)
		}
		// 40% lost: 2 of each 5.
		marked := -1
		for i := range 40 {
			step(func(n uint32) bool { return n%5 < 2 })
			if len(calls) > 0 && marked < 0 {
				marked = i
			}
		}
		if links == 1 {
			if len(calls) != 0 || p.Routed()["lossy_kept"] != 1 {
				t.Errorf("the only link, lossy: calls %v, lossy_kept %d (want none, 1)", calls, p.Routed()["lossy_kept"])
			}
			continue
		}
		// A probe is lost once unanswered for probeTimeout (5 rounds):
		// the fifth loss is seen ~5+12 rounds in.
		if marked < 0 || marked > 20 || !calls[0] || peer.Quality().Around != "lossy" || p.Routed()["routed_around_lossy"] != 1 {
			t.Fatalf("40%% loss: marked after %d rounds, calls %v, quality %+v, routed_around_lossy %d",
				marked, calls, peer.Quality(), p.Routed()["routed_around_lossy"])
		}
		if q := peer.Quality(); q.Lost < 4 || q.Lost > 9 {
			t.Errorf("40%% loss measured as %d of 16", q.Lost)
		}
		for range 30 {
			step(func(uint32) bool { return false })
		}
		if len(calls) != 2 || calls[1] || peer.Quality().Around != "" {
			t.Errorf("loss over: calls %v, quality %+v", calls, peer.Quality())
		}
	}
}

func mustSeal(t testing.TB, k *wire.Keyring, flags byte, payload []byte) []byte {
	t.Helper()
	b, err := k.Seal(nil, flags, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frame6 is a minimal Ethernet frame (broadcast, no payload).
func frame6() []byte {
	return []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x88, 0xb5}
}

// A routed packet for a linked peer that is suspect goes around it where
// the routes know a way (here: another peer announcing a link to it),
// and over the suspect link only when they do not; a relayed one always
// takes the link.
func TestRoutedAroundSuspectDestination(t *testing.T) {
	ca := newTestCA(t)
	sock := &capture{}
	p, _ := ca.plane(t, "self", Config{Socket: sock})
	root := make([]byte, wire.RootLen)
	peer := func(name, addr string) (*Peer, netip.AddrPort) {
		id := ca.identity(t, name)
		p.cfg.Directory.Add(&id.Peer)
		keys, err := wire.NewKeyring(root, true, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pr, a := NewPeer(id.ID), netip.MustParseAddrPort(addr)
		pr.SetPath(&Path{Keys: keys, Remote: a})
		pr.SetCert(&id.Peer)
		return pr, a
	}
	dst, dstAddr := peer("dst", "198.18.0.2:4000")
	via, viaAddr := peer("via", "198.18.0.3:4000")
	links := []Link{{Peer: dst, Addr: dstAddr, Up: true}, {Peer: via, Addr: viaAddr, Up: true}}
	routed := func(relay bool) netip.AddrPort {
		t.Helper()
		sock.pkts = nil
		h := topology.Route{Src: ca.identity(t, "src").ID, Dst: dst.ID, TTL: 5, Sealed: true, Relay: relay}
		b, _ := h.AppendBinary(nil)
		var s scratch
		p.routed(&s, p.View(), nil, append(b, make([]byte, 80)...))
		p.drain(&s)
		if len(sock.pkts) != 1 {
			t.Fatalf("%d packets sent", len(sock.pkts))
		}
		return sock.pkts[0].Addr
	}
	// dst suspect: left out of the routes; via announced a link to it.
	p.Publish(NewView(links, topology.NewRoutes(p.self, []nodeid.ID{via.ID}, [][]nodeid.ID{{dst.ID}})))
	if a := routed(false); a != viaAddr {
		t.Errorf("for a suspect peer with a way around: sent to %s, want %s (via)", a, viaAddr)
	}
	if a := routed(true); a != dstAddr {
		t.Errorf("relayed, for a suspect peer: sent to %s, want %s (its link)", a, dstAddr)
	}
	// No way around: the suspect link.
	p.Publish(NewView(links, topology.NewRoutes(p.self, nil, nil)))
	if a := routed(false); a != dstAddr {
		t.Errorf("for a suspect peer with no way around: sent to %s, want %s (its link)", a, dstAddr)
	}
}
