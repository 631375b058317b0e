package overlay_test

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/linktest"
	"go.uber.org/goleak"
)

// TestRekeyLosesNothing: a 1000 frames/s stream for 3.5 s over a link
// whose keys move on every 200 ms crosses at least five rekeys in each
// direction's sender and loses no frame.
func TestRekeyLosesNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ca, hub := linktest.NewCA(t), linktest.NewHub()
	o := linktest.Options{RekeyInterval: 200 * time.Millisecond}
	o.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	a := linktest.Start(t, ca, hub, "alpha", o)
	o.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	b := linktest.Start(t, ca, hub, "beta", o)
	waitUp(t, a, 1)
	waitUp(t, b, 1)
	gen0 := a.Manager.Peers().Links[0].KeyGeneration
	const n = 3500 // 3.5 s: link control checks the keys every 500 ms
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			f := frame(0xff, 0xa, "seq")
			f = binary.BigEndian.AppendUint32(f, uint32(i))
			a.TAP.Inject(f)
		}
	}()
	seen := map[uint32]bool{}
	deadline := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case f := <-b.Received:
			if len(f) == 14+3+4 && string(f[14:17]) == "seq" {
				seen[binary.BigEndian.Uint32(f[17:])] = true
			}
		case <-deadline:
			t.Fatalf("%d of %d frames arrived", len(seen), n)
		}
	}
	gens := a.Manager.Peers().Links[0].KeyGeneration - gen0
	if gens < 5 {
		t.Errorf("the stream crossed %d rekeys, want at least 5", gens)
	}
	if d := b.Manager.Peers().Drops; d["auth_failed"]+d["replayed"] != 0 {
		t.Errorf("drops at the receiver: %v", d)
	}
	t.Logf("%d frames, all arrived, across %d rekeys", n, gens)
}
