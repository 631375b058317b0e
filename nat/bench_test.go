package nat

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the socket alone on loopback, one packet per b.N: the
// batched Socket (sendmmsg → recvmmsg → demux → Handler) against a plain
// net.UDPConn loop (one syscall per packet each way). They report sent
// and received packets per second and loss; speed is never asserted.
//
//	go test -run '^$' -bench 'Socket|PlainUDP' -benchtime 200000x ./nat

var benchSizes = []int{100, 1400}

func BenchmarkSocketBatch(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			tx, err := Listen(loopback(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			rx, err := Listen(loopback(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			var got atomic.Uint64
			go func() { _ = rx.Serve(func(batch []Packet) { got.Add(uint64(len(batch))) }) }()

			to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(rx.LocalAddr().Port))
			payload := make([]byte, size)
			payload[0] = 0x80 // not STUN
			pkts := make([]Packet, BatchSize)
			for i := range pkts {
				pkts[i] = Packet{Data: payload, Addr: to}
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				n := min(BatchSize, b.N-sent)
				if _, err := tx.WriteBatch(pkts[:n]); err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			report(b, start, &got)
		})
	}
}

func BenchmarkPlainUDP(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
			tx, err := net.ListenUDP("udp4", lo)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			rx, err := net.ListenUDP("udp4", lo)
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			_ = rx.SetReadBuffer(sockBuf)
			_ = tx.SetWriteBuffer(sockBuf)
			var got atomic.Uint64
			go func() {
				buf := make([]byte, MaxPacketSize)
				for {
					if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := tx.WriteToUDPAddrPort(payload, to); err != nil {
					b.Fatal(err)
				}
			}
			report(b, start, &got)
		})
	}
}

// report waits until the receiver stops receiving, then reports rates.
func report(b *testing.B, start time.Time, got *atomic.Uint64) {
	sendDone := time.Since(start)
	last := got.Load()
	for {
		time.Sleep(20 * time.Millisecond)
		n := got.Load()
		if n == last {
			break
		}
		last = n
	}
	b.StopTimer()
	recvDone := time.Since(start) - 20*time.Millisecond
	b.ReportMetric(float64(b.N)/sendDone.Seconds(), "tx-pps")
	b.ReportMetric(float64(last)/recvDone.Seconds(), "rx-pps")
	b.ReportMetric(100*(1-float64(last)/float64(b.N)), "loss-%")
}
