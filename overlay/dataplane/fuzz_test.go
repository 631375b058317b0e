package dataplane

import (
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/tap/taptest"
	"github.com/ipopd/ipopd/topology"
)

// handshakeSink counts the DTLS records handed to a handshake.
type handshakeSink struct{ n int }

func (h *handshakeSink) Deliver([]byte) bool { h.n++; return true }

// packets is a relayed link's conn: one packet per Read, then EOF.
type packets [][]byte

func (p *packets) Read(b []byte) (int, error) {
	if len(*p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, (*p)[0])
	*p = (*p)[1:]
	return n, nil
}

// FuzzReceive feeds the outside path as a whole: socket batches of
// packets from a linked peer (sealed with the link's keys, so that what
// they carry reaches routing, control and delivery, or not sealed at
// all), from a peer whose DTLS handshake runs, and from an address no
// link has, and the same through a relayed link's reader. Nothing may
// panic or block; every packet is counted somewhere.
func FuzzReceive(f *testing.F) {
	ca := newTestCA(f)
	dev := taptest.New("fz0", 1400, net.HardwareAddr{2, 0, 0, 0, 0, 1}, 64)
	defer dev.Close()
	go func() {
		for range dev.Written() {
		}
	}()
	p, _ := ca.plane(f, "self", Config{Socket: &sink{sent: map[netip.AddrPort]int{}}, TAP: dev})
	p.HandleControl(KindSignal, func(nodeid.ID, []byte, bool) error { return nil })
	peerID := ca.identity(f, "peer")
	p.cfg.Directory.Add(&peerID.Peer)
	root := make([]byte, wire.RootLen)
	recv, err := wire.NewKeyring(root, true, 0, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	send, _ := wire.NewKeyring(root, false, 0, time.Now())
	upAddr := netip.MustParseAddrPort("198.18.0.1:4000")
	hsAddr := netip.MustParseAddrPort("198.18.0.2:4000")
	stranger := netip.MustParseAddrPort("198.18.0.3:4000")
	up := NewPeer(peerID.ID)
	up.SetPath(&Path{Keys: recv, Remote: upAddr})
	up.SetCert(&peerID.Peer)
	hs := NewPeer(sha256.Sum256([]byte("handshaking")))
	hsSink := &handshakeSink{}
	hs.SetHandshake(hsSink)
	far := nodeid.ID(sha256.Sum256([]byte("far")))
	p.Publish(NewView([]Link{{Peer: up, Addr: upAddr, Up: true}, {Peer: hs, Addr: hsAddr}},
		topology.NewRoutes(p.self, []nodeid.ID{peerID.ID}, [][]nodeid.ID{{far}})))
	p.Attach(&treeMcast{a: peerID.ID, b: far, on: true}, fakeNeigh{})
	r := p.NewReceiver()

	// Seeds: records of [selector, length, body...]; selector bit 4 seals
	// the body with the link's keys (its first byte the wire flags), bit 6
	// sends through the relay reader, the low bits pick the address, the
	// high nibble's bit 3 adds 256 to the length.
	record := func(sel byte, body []byte) []byte { return append([]byte{sel, byte(len(body))}, body...) }
	env, _ := trust.NewSigner(peerID, nil).Seal(p.self, []byte{KindSignal, '{', '}'}, false)
	frame := make([]byte, 60)
	frame[0] = 0xff
	h := topology.Route{Src: peerID.ID, Dst: p.self, TTL: 3, Control: true}
	hb, _ := h.AppendBinary(nil)
	f.Add(record(0x10, append([]byte{wire.FlagControl}, env...)))
	f.Add(record(0x10, append([]byte{0}, frame...)))
	f.Add(record(0x10, append(append([]byte{wire.FlagRouted}, hb...), env...)))
	f.Add(append(record(0x01, []byte{22, 0xfe, 0xfd, 0, 0}), record(0x02, []byte{0xd0, 1, 2})...))
	f.Add(record(0x50, append([]byte{0}, frame...)))
	f.Add(record(0x10, []byte{wire.FlagProbe, wire.ProbeAsk, 0, 0, 0, 7}))
	f.Add(record(0x10, []byte{wire.FlagProbe, wire.ProbeAnswer, 0, 0, 0, 7}))
	tenv, _ := trust.NewSigner(peerID, nil).Seal(treeDst, append([]byte{treeMark}, udp4(netip.MustParseAddr("10.9.0.5"), netip.MustParseAddr("239.1.2.3"))...), false)
	for _, kind := range []byte{treeAlong, treeToRoot} {
		f.Add(record(0x90, append(append([]byte{wire.FlagTree, kind, 5}, peerID.ID[:]...), tenv...)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var batch []nat.Packet
		var relayed packets
		for len(data) >= 2 && len(batch)+len(relayed) < 32 {
			sel, n := data[0], int(data[1])
			if sel&0x80 != 0 {
				n += 256
			}
			data = data[2:]
			n = min(n, len(data))
			body := data[:n:n]
			data = data[n:]
			if sel&0x10 != 0 && len(body) > 0 {
				body, _ = send.Seal(nil, body[0]&(wire.FlagRouted|wire.FlagControl|wire.FlagProbe|wire.FlagTree), body[1:])
			}
			if sel&0x40 != 0 {
				relayed = append(relayed, body)
				continue
			}
			batch = append(batch, nat.Packet{Data: body, Addr: []netip.AddrPort{upAddr, hsAddr, stranger}[int(sel&0x0f)%3]})
		}
		r.Receive(batch)
		p.ReadRelay(up, &relayed)
	})
}
