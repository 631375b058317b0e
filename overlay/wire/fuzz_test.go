package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/ipopd/ipopd/deploy/fuzzseed"
)

// The seed corpora under testdata/fuzz are generated from the code below:
// FuzzOpen's valid-* seeds are what the client half of testEKM seals for
// fuzzFrames, so the fuzzer starts on the accepting path. TestFuzzSeeds
// fails if they drift from what Seal produces. Regenerate with
//
//	go test ./overlay/wire -run TestFuzzSeeds -update-seeds

// fuzzFrames are sealed in order, so frame i carries counter i+1.
func fuzzFrames() [][]byte {
	return [][]byte{nil, frameOf(14, 0xa0), frameOf(60, 0x10), frameOf(300, 0x55)}
}

// fuzzSealed returns the packets the fuzz client seals, in order.
func fuzzSealed(t testing.TB) [][]byte {
	client, _ := pair(t)
	var pkts [][]byte
	for _, f := range fuzzFrames() {
		pkts = append(pkts, mustSeal(t, client, f))
	}
	return pkts
}

func FuzzOpen(f *testing.F) {
	sealed := make(map[string][]byte)
	for i, pkt := range fuzzSealed(f) {
		sealed[string(pkt)] = fuzzFrames()[i]
	}
	sentinels := []error{ErrShort, ErrType, ErrAuth, ErrReplay}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// A fresh receiver each time: every sealed packet is new to it.
		server, err := NewSession(testEKM(), false)
		if err != nil {
			t.Fatal(err)
		}
		out, err := server.Open(nil, pkt)
		st := server.Stats()
		if st.Opened+st.AuthFailed+st.Replayed+st.Short+st.BadType != 1 {
			t.Fatalf("one Open counted as %+v", st)
		}
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || out != nil || server.window.Highest() != 0 {
				t.Fatalf("rejected with %v: %d sentinels, out %q, highest %d", err, n, out, server.window.Highest())
			}
			return
		}
		frame, ok := sealed[string(pkt)]
		if !ok {
			t.Fatalf("accepted a packet nobody sealed: % x", pkt)
		}
		if !bytes.Equal(out, frame) {
			t.Fatalf("opened to %q, sealed %q", out, frame)
		}
		// In place on a second receiver gives the same frame; the first
		// receiver now refuses the packet as a replay.
		other, _ := NewSession(testEKM(), false)
		buf := append([]byte(nil), pkt...)
		if got, err := other.Open(buf[HeaderLen:HeaderLen], buf); err != nil || !bytes.Equal(got, frame) {
			t.Fatalf("in place: %q, %v", got, err)
		}
		if _, err := server.Open(nil, pkt); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Open: %v, want ErrReplay", err)
		}
	})
}

// decodeCounters turns fuzz bytes into counters, three bytes each: an
// opcode and a 16-bit value, read relative to the highest counter so far so
// that most steps land near the window instead of nowhere in 2^64.
func decodeCounters(data []byte) []uint64 {
	var ctrs []uint64
	var hi uint64
	for ; len(data) >= 3; data = data[3:] {
		op, v := data[0], uint64(binary.BigEndian.Uint16(data[1:]))
		var c uint64
		switch op % 4 {
		case 0: // forward, by v scaled up to 2^47
			c = hi + v<<((op>>2)%32)
		case 1: // behind, across the window edge
			c = hi - min(hi, v%(2*WindowSize))
		case 2: // absolute, small
			c = v
		case 3: // the top of the counter space
			c = math.MaxUint64 - v
		}
		hi = max(hi, c)
		ctrs = append(ctrs, c)
	}
	return ctrs
}

// encodeCounter is decodeCounters' inverse for one step, for seeds.
func encodeCounter(op byte, v uint16) []byte { return []byte{op, byte(v >> 8), byte(v)} }

func FuzzReplayWindow(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { compare(t, decodeCounters(data)) })
}

func replaySeeds() map[string][]byte {
	seq := func(steps ...[]byte) []byte { return bytes.Join(steps, nil) }
	return map[string][]byte{
		"empty":      nil,
		"in-order":   seq(encodeCounter(0, 1), encodeCounter(0, 1), encodeCounter(0, 1)),
		"duplicate":  seq(encodeCounter(2, 7), encodeCounter(2, 7), encodeCounter(2, 0)),
		"reorder":    seq(encodeCounter(0, 100), encodeCounter(1, 5), encodeCounter(1, 99), encodeCounter(1, 5)),
		"edge":       seq(encodeCounter(0, 5000), encodeCounter(1, WindowSize-1), encodeCounter(1, WindowSize)),
		"ring-jump":  seq(encodeCounter(2, 10), encodeCounter(0, ringBlocks*blockBits), encodeCounter(2, 10)),
		"far-jump":   seq(encodeCounter(2, 3), encodeCounter(0xfc, 1), encodeCounter(1, 1)),
		"top-of-u64": seq(encodeCounter(3, 1), encodeCounter(3, 0), encodeCounter(1, 2047), encodeCounter(2, 1)),
	}
}

func openSeeds(t testing.TB) map[string][]byte {
	pkts := fuzzSealed(t)
	flipped := append([]byte(nil), pkts[2]...)
	flipped[HeaderLen+3] ^= 0x20
	seeds := map[string][]byte{
		"empty":     nil,
		"stun":      {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42},
		"truncated": pkts[1][:Overhead-1],
		"flipped":   flipped,
	}
	for i, p := range pkts {
		seeds[fmt.Sprintf("valid-%d", i+1)] = p
	}
	return seeds
}

// TestFuzzSeeds writes the corpora with -update-seeds, and otherwise checks
// that the committed ones are exactly what this code would write.
func TestFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzOpen", openSeeds(t))
	fuzzseed.Check(t, "FuzzReplayWindow", replaySeeds())
}
