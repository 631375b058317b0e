package dataplane

import (
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
)

type fakeMcast struct{ membership, routed int }

func (m *fakeMcast) Membership([]byte) { m.membership++ }
func (m *fakeMcast) Route(_ *tap.Parsed, _ []byte, dst []nodeid.ID) ([]nodeid.ID, Action) {
	m.routed++
	return dst, Drop
}
func (m *fakeMcast) Deliver(*tap.Parsed, []byte) bool { return true }
func (m *fakeMcast) TreeForward(_ *tap.Parsed, _ []byte, _ nodeid.ID, _ bool, dst []nodeid.ID) ([]nodeid.ID, TreeVerdict) {
	return dst, TreeVerdict{}
}

type fakeNeigh struct{ forward bool }

func (n fakeNeigh) Local([]byte) bool        { return n.forward }
func (n fakeNeigh) Remote(nodeid.ID, []byte) {}

// read runs frames through the inside path as one batch.
func read(p *Plane, frames ...[]byte) {
	in := &inside{parsed: make([]tap.Parsed, len(frames)), sizes: make([]int, len(frames))}
	for i, f := range frames {
		in.bufs = append(in.bufs, f)
		in.sizes[i] = len(f)
	}
	p.inside(in, len(frames))
}

// TestInsideClasses: each frame from the TAP is parsed once and goes
// where its class says: IGMP/MLD to the querier only, never onto a link;
// runts and broken tags nowhere; ARP answered here nowhere else, other
// ARP flooded; multicast data as the multicast plane decides; broadcast
// and unknown unicast flooded (one copy per link with this view).
func TestInsideClasses(t *testing.T) {
	p, k, _, _, _ := floodPlane(t)
	mc := &fakeMcast{}
	p.Attach(mc, fakeNeigh{forward: false})
	eth := func(dst byte, etype uint16, payload ...byte) []byte {
		f := []byte{dst, 0, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 9, byte(etype >> 8), byte(etype)}
		if dst == 0xff {
			copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}
		return append(f, payload...)
	}
	ip4 := func(proto byte, dst ...byte) []byte {
		h := make([]byte, 28)
		h[0], h[8], h[9] = 0x45, 1, proto
		copy(h[12:], []byte{10, 0, 0, 9})
		copy(h[16:], dst)
		return h
	}
	igmp := eth(1, tap.EtherTypeIPv4, ip4(2, 224, 0, 0, 22)...)
	runt := []byte{1, 0, 0x5e}
	brokenTag := eth(1, tap.EtherTypeVLAN, 0, 7)
	arp := eth(0xff, tap.EtherTypeARP, make([]byte, 28)...)
	group := eth(1, tap.EtherTypeIPv4, ip4(17, 239, 1, 1, 1)...)
	read(p, igmp, runt, brokenTag, arp, group)
	if sent := k.take(); len(sent) != 0 {
		t.Errorf("sent %v for IGMP, invalid frames, a locally answered ARP and a dropped group", sent)
	}
	if mc.membership != 1 || mc.routed != 1 {
		t.Errorf("querier got %d frames, Route asked %d times; want 1 and 1", mc.membership, mc.routed)
	}
	if st := p.TAPStats(); st.RxFrames[tap.ClassInvalid] != 2 || st.RxFrames[tap.ClassIGMP] != 1 {
		t.Errorf("rx by class %v", st.RxFrames)
	}

	p.Attach(mc, fakeNeigh{forward: true})
	bcast := eth(0xff, tap.EtherTypeIPv4, ip4(17, 10, 0, 0, 255)...)
	unknown := eth(2, tap.EtherTypeIPv4, ip4(17, 10, 0, 0, 7)...)
	for _, f := range [][]byte{arp, bcast, unknown} {
		read(p, f)
		if sent := k.take(); len(sent) != 3 {
			t.Errorf("%x: sent to %d links, want a flood to all 3", f[:14], len(sent))
		}
	}
}
