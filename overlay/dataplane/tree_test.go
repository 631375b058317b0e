package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/tap/taptest"
	"github.com/ipopd/ipopd/topology"
)

// treeMcast is a multicast plane on one tree: a is the parent, b the
// child; the members here want the group.
type treeMcast struct {
	fakeMcast
	a, b nodeid.ID
	on   bool
}

func (m *treeMcast) TreeForward(_ *tap.Parsed, _ []byte, from nodeid.ID, along bool, dst []nodeid.ID) ([]nodeid.ID, TreeVerdict) {
	v := TreeVerdict{Key: m.a} // the root is beyond a
	if !m.on || along && from != m.a && from != m.b {
		return dst, v
	}
	v.On, v.Local = true, true
	if from != m.a {
		dst = append(dst, m.a)
	}
	if from != m.b {
		dst = append(dst, m.b)
	}
	return dst, v
}

// udp4 is an Ethernet + IPv4 + UDP frame from src to group.
func udp4(src, group netip.Addr) []byte {
	f := make([]byte, 14+28)
	f[0], f[6] = 0x01, 0x02
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 1, 17
	s, g := src.As4(), group.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], g[:])
	return f
}

// TestTreeFrames: a frame of a tree, signed by its origin (a third node),
// that comes from the parent goes on to the child and to the TAP, once;
// the same again (a replay, or a second way during a repair) goes
// nowhere; one altered on the way, or signed by a node the frame's
// source address is not of, is refused; one from a node that is not a
// tree neighbour is a stray; one toward the root off the tree goes on
// toward the key.
// treeEnd is a linked peer of the plane under test: its sealing keys
// toward the plane (send) open the plane's packets to it too (recv).
type treeEnd struct {
	id   *identity.Identity
	peer *Peer
	send *wire.Keyring
	recv *wire.Keyring
	addr netip.AddrPort
}

// treeFixture is a plane on one tree: links to a (its parent), b (its
// child) and c (not on the tree), and the origin of the frames (not
// linked), whose certificate is known.
type treeFixture struct {
	ca      *testCA
	p       *Plane
	sock    *capture
	mc      *treeMcast
	a, b, c *treeEnd
	origin  *identity.Identity
	signer  *trust.Signer
}

func newTreeFixture(tb testing.TB) *treeFixture {
	ca := newTestCA(tb)
	dev := taptest.New("tr0", 1400, net.HardwareAddr{2, 0, 0, 0, 0, 1}, 64)
	tb.Cleanup(func() { dev.Close() })
	go func() {
		for range dev.Written() {
		}
	}()
	sock := &capture{}
	p, _ := ca.plane(tb, "self", Config{Socket: sock, TAP: dev})
	origin := ca.identity(tb, "origin", netip.MustParsePrefix("10.9.0.0/16"))
	p.cfg.Directory.Add(&origin.Peer)
	var ends []*treeEnd
	var links []Link
	for i, name := range []string{"a", "b", "c"} {
		id := ca.identity(tb, name)
		p.cfg.Directory.Add(&id.Peer)
		root := make([]byte, wire.RootLen)
		root[0] = byte(i + 1)
		ours, _ := wire.NewKeyring(root, true, 0, time.Now())
		theirs, _ := wire.NewKeyring(root, false, 0, time.Now())
		e := &treeEnd{id: id, peer: NewPeer(id.ID), send: theirs, recv: theirs, addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(4000+i))}
		e.peer.SetPath(&Path{Keys: ours, Remote: e.addr})
		e.peer.SetCert(&id.Peer)
		ends = append(ends, e)
		links = append(links, Link{Peer: e.peer, Addr: e.addr, Up: true})
	}
	f := &treeFixture{ca: ca, p: p, sock: sock, a: ends[0], b: ends[1], c: ends[2], origin: origin, signer: trust.NewSigner(origin, nil)}
	p.Publish(NewView(links, topology.NewRoutes(p.self, []nodeid.ID{f.a.id.ID, f.b.id.ID, f.c.id.ID}, nil)))
	f.mc = &treeMcast{a: f.a.id.ID, b: f.b.id.ID, on: true}
	p.Attach(f.mc, fakeNeigh{})
	return f
}

// packet is a tree packet of kind for frame, signed by s as who.
func (f *treeFixture) packet(tb testing.TB, kind byte, s *trust.Signer, who nodeid.ID, frame []byte) []byte {
	env, err := s.Seal(treeDst, append([]byte{treeMark}, frame...), false)
	if err != nil {
		tb.Fatal(err)
	}
	return append(append([]byte{kind, topology.HopLimit}, who[:]...), env...)
}

func TestTreeFrames(t *testing.T) {
	fx := newTreeFixture(t)
	ca, p, sock, mc, origin, signer := fx.ca, fx.p, fx.sock, fx.mc, fx.origin, fx.signer
	a, b, c := fx.a, fx.b, fx.c
	type end = treeEnd
	frame := udp4(netip.MustParseAddr("10.9.0.5"), netip.MustParseAddr("239.1.2.3"))
	treePkt := func(kind byte, s *trust.Signer, who nodeid.ID, f []byte) []byte { return fx.packet(t, kind, s, who, f) }
	from := func(e *end, pkt []byte) {
		sock.reset()
		p.NewReceiver().Receive([]nat.Packet{{Data: mustSeal(t, e.send, wire.FlagTree, pkt), Addr: e.addr}})
	}
	tapN := func() uint64 { return p.tapStats.txFrames.Load() }
	sentTo := func() map[netip.AddrPort]int {
		m := map[netip.AddrPort]int{}
		for _, pkt := range sock.snapshot() {
			m[pkt.Addr]++
		}
		return m
	}
	along := treePkt(treeAlong, signer, origin.ID, frame)
	from(a, along)
	if got := sentTo(); len(got) != 1 || got[b.addr] != 1 || tapN() != 1 {
		t.Fatalf("from the parent: sent %v (want one to the child), %d frames to the TAP (want 1)", got, tapN())
	}
	// What the child got is the same signed frame, along the tree.
	fwd, flags, err := b.recv.Open(nil, sock.snapshot()[0].Data)
	if err != nil || flags != wire.FlagTree || fwd[0] != treeAlong || fwd[1] != topology.HopLimit-1 || nodeid.ID(fwd[2:treeHeaderLen]) != origin.ID {
		t.Fatalf("forwarded: %x flags %#x %v", fwd[:2], flags, err)
	}
	from(b, along) // the same frame again, from the other side
	if len(sock.snapshot()) != 0 || tapN() != 1 || p.Drops()["bad_origin"] != 1 {
		t.Errorf("a replay: sent %d, TAP %d, bad_origin %d", len(sock.snapshot()), tapN(), p.Drops()["bad_origin"])
	}
	altered := treePkt(treeAlong, signer, origin.ID, frame)
	altered[len(altered)-80] ^= 1
	from(a, altered)
	if len(sock.snapshot()) != 0 || p.Drops()["bad_origin"] != 2 {
		t.Errorf("altered: sent %d, bad_origin %d", len(sock.snapshot()), p.Drops()["bad_origin"])
	}
	// c signs a frame with the origin's source address: its signature
	// checks, its certificate does not cover the address.
	forged := treePkt(treeAlong, trust.NewSigner(c.id, nil), c.id.ID, frame)
	from(a, forged)
	if tapN() != 1 || p.Drops()["spoofed_source"] != 1 {
		t.Errorf("another node's address: TAP %d, spoofed_source %d", tapN(), p.Drops()["spoofed_source"])
	}
	from(c, treePkt(treeAlong, signer, origin.ID, frame))
	if len(sock.snapshot()) != 0 || p.Drops()["tree_stray"] != 1 {
		t.Errorf("from a node not on the tree here: sent %d, tree_stray %d", len(sock.snapshot()), p.Drops()["tree_stray"])
	}
	// From a source off the tree, toward the root: on the tree here, it
	// goes to both tree neighbours; off it, on toward the key.
	from(c, treePkt(treeToRoot, signer, origin.ID, frame))
	if got := sentTo(); got[a.addr] != 1 || got[b.addr] != 1 || tapN() != 2 {
		t.Errorf("toward the root, on the tree: sent %v, TAP %d", got, tapN())
	}
	mc.on = false
	from(c, treePkt(treeToRoot, signer, origin.ID, frame))
	if got := sentTo(); len(got) != 1 || tapN() != 2 {
		t.Errorf("toward the root, off the tree: sent %v (want one copy on), TAP %d", got, tapN())
	}
	// From this node's TAP, off the tree: onto it at a linked subscriber
	// (b), in one copy signed here.
	sock.reset()
	var sc scratch
	p.treeSend(&sc, p.View(), ToRoot, []nodeid.ID{{0xee}, {0x99}, b.id.ID}, frame)
	p.drain(&sc)
	if got := sentTo(); len(got) != 1 || got[b.addr] != 1 {
		t.Errorf("from the TAP toward the root: sent %v, want one copy to the linked subscriber", got)
	} else if f, flags, err := b.recv.Open(nil, sock.snapshot()[0].Data); err != nil || flags != wire.FlagTree || f[0] != treeToRoot || nodeid.ID(f[2:treeHeaderLen]) != p.self {
		t.Errorf("the copy: %x flags %#x %v", f[:2], flags, err)
	}
	// An origin whose certificate this node lacks: held, asked for,
	// and taken once it is known.
	late := ca.identity(t, "late", netip.MustParsePrefix("10.8.0.0/16"))
	lateFrame := udp4(netip.MustParseAddr("10.8.0.1"), netip.MustParseAddr("239.1.2.3"))
	lateFrame[11] = 8 // a MAC of its own: the origin's is learned already
	mc.on = true
	from(a, treePkt(treeAlong, trust.NewSigner(late, nil), late.ID, lateFrame))
	if tapN() != 2 || p.Drops()["unknown_origin"] != 0 {
		t.Errorf("an unknown origin: TAP %d, unknown_origin %d (want held)", tapN(), p.Drops()["unknown_origin"])
	}
	p.cfg.Directory.Add(&late.Peer)
	sock.reset()
	p.release(late.ID)
	for deadline := time.Now().Add(2 * time.Second); tapN() != 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if tapN() != 3 {
		t.Errorf("the held frame once the certificate came: TAP %d, want 3; drops %v", tapN(), p.Drops())
	}
	// Kind, TTL 0, along the tree beyond treeTTL, toward the root
	// beyond the ring's HopLimit.
	for _, bad := range [][]byte{{treeAlong}, {9, 1}, {treeAlong, 0}, {treeAlong, treeTTL + 1}, {treeToRoot, topology.HopLimit + 1}} {
		from(a, append(bad, make([]byte, 40)...))
	}
	if p.Drops()["bad_tree"] != 5 {
		t.Errorf("malformed tree packets: bad_tree %d, want 5", p.Drops()["bad_tree"])
	}
}

// BenchmarkTreeHop: a tree node takes a frame from its parent (1000-byte
// frame, signed by its origin) and passes it to its child and its TAP:
// open, check the signature and the origin, seal once more. Against
// BenchmarkOutside (a frame over one link), the cost of a tree's origin
// authentication per hop.
func BenchmarkTreeHop(b *testing.B) {
	fx := newTreeFixture(b)
	frame := udp4(netip.MustParseAddr("10.9.0.5"), netip.MustParseAddr("239.1.2.3"))
	frame = append(frame, make([]byte, 1000-len(frame))...)
	const batch = 4096
	pkts := make([][]byte, batch)
	r := fx.p.NewReceiver()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	i := batch
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			for j := range pkts { // fresh signatures: the replay window refuses the same twice
				pkts[j] = mustSeal(b, fx.a.send, wire.FlagTree, fx.packet(b, treeAlong, fx.signer, fx.origin.ID, frame))
			}
			fx.sock.reset()
			i = 0
			b.StartTimer()
		}
		r.Receive([]nat.Packet{{Data: pkts[i], Addr: fx.a.addr}})
		i++
	}
	if fx.p.counters.treeForwarded.Load() == 0 {
		b.Fatal("nothing forwarded")
	}
}

// BenchmarkTreeOrigin: the origin's part, per frame put on a tree: sign
// and seal one copy.
func BenchmarkTreeOrigin(b *testing.B) {
	fx := newTreeFixture(b)
	frame := udp4(netip.MustParseAddr("10.9.0.5"), netip.MustParseAddr("239.1.2.3"))
	frame = append(frame, make([]byte, 1000-len(frame))...)
	v := fx.p.View()
	var s scratch
	targets := []nodeid.ID{fx.b.id.ID}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		fx.p.treeSend(&s, v, Tree, targets, frame)
		fx.p.drain(&s)
		fx.sock.reset()
	}
}
