package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/tap/taptest"
)

// Per-frame costs of the two directions, one link, 1000-byte frames, no
// real socket or TAP (the capture socket and the fake TAP):
//
//	go test -run - -bench . -benchmem ./overlay/dataplane
//
// The baseline for the data-path work (issue 14), and where the liveness
// marks (heard on receive, sent on send) show up.

// BenchmarkInside: a batch of 64 unicast frames for the linked peer read
// from the TAP: parse, MAC lookup, seal, batch, WriteBatch.
func BenchmarkInside(b *testing.B) {
	p, peer, _, sock, _ := livePair(b)
	p.macs.learn([6]byte{2, 0, 0, 0, 0, 2}, peer.ID, netip.Addr{})
	in := &inside{bufs: make([][]byte, readBatch), sizes: make([]int, readBatch), parsed: make([]tap.Parsed, readBatch)}
	frame := make([]byte, 1000)
	copy(frame, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := range in.bufs {
		in.bufs[i] = make([]byte, p.maxFrame())
		in.sizes[i] = copy(in.bufs[i], frame)
	}
	p.Tick(time.Now())
	b.SetBytes(int64(len(frame) * readBatch))
	b.ReportAllocs()
	for b.Loop() {
		p.inside(in, readBatch)
		sock.pkts = sock.pkts[:0]
	}
}

// BenchmarkOutside: a batch of 64 sealed 1000-byte frames from the peer:
// open, replay window, heard, deliver to the TAP.
func BenchmarkOutside(b *testing.B) {
	p, _, send, _, addr := livePair(b)
	frame := make([]byte, 1000)
	copy(frame, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5})
	r := p.NewReceiver()
	dev := p.cfg.TAP.(*taptest.Device)
	done := make(chan struct{})
	defer close(done)
	go func() { // the kernel's side of the TAP
		for {
			select {
			case <-dev.Written():
			case <-done:
				return
			}
		}
	}()
	p.Tick(time.Now())
	pkts := make([]nat.Packet, readBatch)
	b.SetBytes(int64(len(frame) * readBatch))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range pkts {
			pkts[i] = nat.Packet{Data: mustSeal(b, send, 0, frame), Addr: addr}
		}
		b.StartTimer()
		r.Receive(pkts)
	}
}
