package wire

import (
	"fmt"
	"testing"
)

// Frame sizes: a small packet (ack, VoIP) and a full one at the default
// tap.mtu. b.SetBytes counts frame bytes, so MB/s is goodput.
var benchSizes = []int{100, 1400}

func BenchmarkSeal(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			client, _ := pair(b)
			frame := frameOf(n, 0)
			dst := make([]byte, 0, n+Overhead)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Seal(dst, frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealParallel shows what the shared counter costs when every
// reader goroutine seals for the same link.
func BenchmarkSealParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			client, _ := pair(b)
			frame := frameOf(n, 0)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]byte, 0, n+Overhead)
				for pb.Next() {
					if _, err := client.Seal(dst, frame); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			client, server := pair(b)
			// Each packet opens once per window, so cycle through a ring of
			// them and start a fresh window whenever the ring wraps; the
			// reset is one 520-byte clear per 1024 packets.
			pkts := make([][]byte, 1024)
			for i := range pkts {
				pkts[i] = mustSeal(b, client, frameOf(n, byte(i)))
			}
			dst := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(pkts) {
					i = 0
					server.rxMu.Lock()
					server.window = ReplayWindow{}
					server.rxMu.Unlock()
				}
				if _, err := server.Open(dst, pkts[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
