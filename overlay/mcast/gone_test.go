package mcast

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// fakeData is the data plane as the plane sees it, recording what it sends.
type fakeData struct {
	mu       sync.Mutex
	handlers map[byte]dataplane.ControlHandler
	sent     map[nodeid.ID]int
	bcasts   [][]byte
}

func (d *fakeData) SendControl(to nodeid.ID, _ []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent[to]++
	return nil
}

func (d *fakeData) BroadcastControl(p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bcasts = append(d.bcasts, append([]byte(nil), p...))
}

func (d *fakeData) HandleControl(kind byte, h dataplane.ControlHandler) { d.handlers[kind] = h }
func (d *fakeData) WriteTAP(f [][]byte) (int, error)                    { return len(f), nil }

func gonePlane(t testing.TB) (*Plane, *fakeData, *[]nodeid.ID) {
	router, err := igmp.New(igmp.Config{Version: 3, QueryInterval: 125 * time.Second, QueryResponseInterval: 10 * time.Second, LastMemberQueryInterval: time.Second, Robustness: 2, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DisableIPv6: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeData{handlers: map[byte]dataplane.ControlHandler{}, sent: map[nodeid.ID]int{}}
	var mu sync.Mutex
	var gone []nodeid.ID
	t.Helper()
	mc := New(Config{Self: nodeid.ID{9}, Router: router, Data: d, OnGone: func(id nodeid.ID) {
		mu.Lock()
		gone = append(gone, id)
		mu.Unlock()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return mc, d, &gone
}

func full(t *testing.T, mc *Plane, d *fakeData, from nodeid.ID) {
	b, err := (&topology.Message{Kind: topology.KindFull, Epoch: 1, Seq: 1, Refresh: time.Minute}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.handlers[dataplane.KindMembership](from, append([]byte{dataplane.KindMembership}, b...), true); err != nil {
		t.Fatal(err)
	}
}

// A notice that a node is gone makes the plane ask the node; a node that
// answers is kept, one that stays silent is forgotten, and only the node
// that lost the link tells the others. A member's lie about a live node
// costs that node one question, and only once per probeEvery.
func TestGoneNotices(t *testing.T) {
	mc, d, gone := gonePlane(t)
	liar, alive, dead, lost := nodeid.ID{1}, nodeid.ID{2}, nodeid.ID{3}, nodeid.ID{4}
	notice := func(about nodeid.ID) {
		if err := d.handlers[dataplane.KindGone](liar, append([]byte{dataplane.KindGone}, about[:]...), false); err != nil {
			t.Fatal(err)
		}
	}
	notice(alive)
	notice(alive) // again at once: not asked twice
	notice(dead)
	notice(nodeid.ID{9}) // about this node itself
	mc.loop.Call(func() {})
	full(t, mc, d, alive) // it answers
	mc.LinkLost(lost)     // our own link: we tell the others if it is silent
	if err := d.handlers[dataplane.KindGone](liar, []byte{dataplane.KindGone, 1, 2}, false); err == nil {
		t.Error("a short notice is taken")
	}
	time.Sleep(probeWait + 500*time.Millisecond)
	mc.loop.Call(func() {})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sent[alive] != 1 || d.sent[dead] != 1 || d.sent[lost] != 1 || d.sent[nodeid.ID{9}] != 0 {
		t.Errorf("probes sent %v; want one each to alive, dead and lost, none to self", d.sent)
	}
	if len(*gone) != 2 || !(((*gone)[0] == dead && (*gone)[1] == lost) || ((*gone)[0] == lost && (*gone)[1] == dead)) {
		t.Errorf("forgotten %v, want dead and lost", *gone)
	}
	if len(d.bcasts) != 1 || nodeid.ID(d.bcasts[0][1:]) != lost {
		t.Errorf("notices broadcast %d, want one, about lost", len(d.bcasts))
	}
	if mc.probes.ignored.Load() != 2 {
		t.Errorf("gone_ignored %d, want 2 (the repeat and the one about us)", mc.probes.ignored.Load())
	}
}

// FuzzGoneNotice: any payload of kind 19 from a member; nothing panics and
// the probes stay within their bound.
func FuzzGoneNotice(f *testing.F) {
	f.Add(append([]byte{dataplane.KindGone}, make([]byte, 32)...))
	f.Add([]byte{dataplane.KindGone, 1})
	mc, d, _ := gonePlane(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		_ = d.handlers[dataplane.KindGone](nodeid.ID{1}, append([]byte{dataplane.KindGone}, payload...), false)
		mc.loop.Call(func() {
			if len(mc.probes.active) > maxProbes || len(mc.probes.last) > maxProbes {
				t.Fatalf("%d probes, %d remembered", len(mc.probes.active), len(mc.probes.last))
			}
		})
	})
}
