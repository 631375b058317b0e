package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
)

// testEKM is fixed keying material, as if exported from one handshake. It
// is deterministic so the FuzzOpen seeds (sealed with it) stay valid.
func testEKM() []byte {
	ekm := make([]byte, ExporterLen)
	for i := range ekm {
		ekm[i] = byte(i*7 + 1)
	}
	return ekm
}

// pair returns the two ends of one link: the DTLS client and server.
func pair(t testing.TB) (client, server *Session) {
	t.Helper()
	var err error
	if client, err = NewSession(testEKM(), true); err != nil {
		t.Fatal(err)
	}
	if server, err = NewSession(testEKM(), false); err != nil {
		t.Fatal(err)
	}
	return client, server
}

func frameOf(n int, seed byte) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = seed + byte(i)
	}
	return f
}

func mustSeal(t testing.TB, s *Session, frame []byte) []byte {
	t.Helper()
	pkt, err := s.Seal(nil, frame)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func TestRoundTrip(t *testing.T) {
	client, server := pair(t)
	for _, tc := range []struct {
		name     string
		from, to *Session
	}{{"client to server", client, server}, {"server to client", server, client}} {
		for i, n := range []int{0, 1, 60, 1400, 9000} {
			frame := frameOf(n, byte(i))
			prefix := []byte("keep")
			pkt, err := tc.from.Seal(append([]byte(nil), prefix...), frame)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pkt, prefix) || len(pkt) != len(prefix)+n+Overhead {
				t.Fatalf("%s: Seal(%d bytes) appended %d bytes after a %d-byte prefix", tc.name, n, len(pkt)-len(prefix), len(prefix))
			}
			pkt = pkt[len(prefix):]
			if !IsData(pkt) || pkt[flagsOff] != 0 || binary.BigEndian.Uint64(pkt[counterOff:]) != uint64(i+1) {
				t.Fatalf("%s: header % x, want type d0, flags 0, counter %d", tc.name, pkt[:HeaderLen], i+1)
			}
			got, err := tc.to.Open([]byte("x"), pkt)
			if err != nil || !bytes.Equal(got, append([]byte("x"), frame...)) {
				t.Fatalf("%s: Open(%d-byte frame) = %d bytes, %v", tc.name, n, len(got), err)
			}
		}
	}
	if st := client.Stats(); st != (Stats{Sealed: 5, Opened: 5}) {
		t.Fatalf("client stats %+v", st)
	}
}

func TestWrongKey(t *testing.T) {
	client, server := pair(t)
	pkt := mustSeal(t, client, frameOf(100, 1))
	// A reflected packet meets the other direction's key.
	if _, err := client.Open(nil, pkt); !errors.Is(err, ErrAuth) {
		t.Fatalf("client opened its own packet: %v", err)
	}
	other := testEKM()
	other[0] ^= 1
	stranger, err := NewSession(other, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Open(nil, pkt); !errors.Is(err, ErrAuth) {
		t.Fatalf("session from other keys opened the packet: %v", err)
	}
	if _, err := server.Open(nil, pkt); err != nil {
		t.Fatalf("right key: %v", err)
	}
}

func TestBitFlip(t *testing.T) {
	client, server := pair(t)
	// Accept one packet first so the window is not trivially empty.
	if _, err := server.Open(nil, mustSeal(t, client, frameOf(10, 0))); err != nil {
		t.Fatal(err)
	}
	pkt := mustSeal(t, client, frameOf(64, 9))
	before := server.window
	for bit := 0; bit < 8*len(pkt); bit++ {
		bad := append([]byte(nil), pkt...)
		bad[bit/8] ^= 1 << (bit % 8)
		want := ErrAuth
		if bit < 8 { // the type byte: no longer a data packet at all
			want = ErrType
		}
		if _, err := server.Open(nil, bad); !errors.Is(err, want) {
			t.Fatalf("bit %d flipped: %v, want %v", bit, err, want)
		}
		if server.window != before {
			t.Fatalf("bit %d flipped: a rejected packet moved the window", bit)
		}
	}
	if _, err := server.Open(nil, pkt); err != nil {
		t.Fatalf("original after flips: %v", err)
	}
	st := server.Stats()
	if st.AuthFailed != uint64(8*len(pkt)-8) || st.BadType != 8 || st.Opened != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReplay(t *testing.T) {
	client, server := pair(t)
	const n = 3000
	pkts := make([][]byte, n+1) // pkts[i] carries counter i
	for i := 1; i <= n; i++ {
		pkts[i] = mustSeal(t, client, frameOf(20, byte(i)))
	}
	open := func(i int) error { _, err := server.Open(nil, pkts[i]); return err }

	if err := open(n); err != nil {
		t.Fatal(err)
	}
	if err := open(n); !errors.Is(err, ErrReplay) {
		t.Fatalf("exact duplicate: %v", err)
	}
	// Every counter in the window but the highest arrives late, in a
	// scrambled order, and is accepted once.
	oldest := n - WindowSize + 1
	for k := 0; k < WindowSize-1; k++ {
		i := oldest + (k*769)%(WindowSize-1) // 769 is coprime to 2047
		if err := open(i); err != nil {
			t.Fatalf("counter %d, %d behind the highest: %v", i, n-i, err)
		}
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("counter %d twice: %v", i, err)
		}
	}
	for _, i := range []int{oldest - 1, oldest - 2, 1} {
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("counter %d, %d behind the highest: %v, want ErrReplay", i, n-i, err)
		}
	}
	if st := server.Stats(); st.Opened != WindowSize || st.Replayed != WindowSize+3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShortAndType(t *testing.T) {
	_, server := pair(t)
	for _, tc := range []struct {
		pkt  []byte
		want error
	}{
		{nil, ErrShort},
		{[]byte{TypeData}, ErrShort},
		{append([]byte{TypeData}, make([]byte, Overhead-2)...), ErrShort},
		{append([]byte{TypeData}, make([]byte, Overhead-1)...), ErrAuth},
		{[]byte{0x00, 0x01, 0x00, 0x00}, ErrType}, // STUN binding request
		{[]byte{22, 0xfe, 0xfd}, ErrType},         // DTLS handshake
	} {
		if _, err := server.Open(nil, tc.pkt); !errors.Is(err, tc.want) {
			t.Fatalf("Open(% x) = %v, want %v", tc.pkt, err, tc.want)
		}
	}
}

func TestUnknownFlags(t *testing.T) {
	client, server := pair(t)
	// Seal by hand what a newer peer might send: authentic, flags = 0x80.
	pkt := []byte{TypeData, 0x80, 0, 0, 0, 0, 0, 0, 0, 1}
	n := client.send.nonce(1)
	pkt = client.send.aead.Seal(pkt, n[:], frameOf(30, 0), pkt[:HeaderLen])
	if _, err := server.Open(nil, pkt); !errors.Is(err, ErrType) {
		t.Fatalf("authentic packet with flags 0x80: %v, want ErrType", err)
	}
	if server.window.Highest() != 0 {
		t.Fatal("refused packet moved the window")
	}
}

func TestControlMessages(t *testing.T) {
	client, server := pair(t)
	pkt, err := client.SealFlags(nil, FlagControl, []byte("membership"))
	if err != nil {
		t.Fatal(err)
	}
	got, flags, err := server.OpenFlags(nil, pkt)
	if err != nil || flags != FlagControl || string(got) != "membership" {
		t.Fatalf("OpenFlags = %q, %#x, %v", got, flags, err)
	}
	// A frame reader never mistakes a control message for a frame.
	pkt2, _ := client.SealFlags(nil, FlagControl, []byte("membership"))
	if _, err := server.Open(nil, pkt2); !errors.Is(err, ErrType) {
		t.Fatalf("Open of a control packet: %v, want ErrType", err)
	}
	// Flags are authenticated: flipping one is ErrAuth.
	pkt3, _ := client.SealFlags(nil, FlagControl, []byte("x"))
	pkt3[flagsOff] = 0
	if _, _, err := server.OpenFlags(nil, pkt3); !errors.Is(err, ErrAuth) {
		t.Fatalf("flag flipped: %v, want ErrAuth", err)
	}
}

func TestKeyExhausted(t *testing.T) {
	client, server := pair(t)
	client.sendCtr.Store(CounterLimit - 2)
	pkt := mustSeal(t, client, frameOf(10, 0))
	if _, err := server.Open(nil, pkt); err != nil {
		t.Fatalf("last counter: %v", err)
	}
	for range 3 {
		dst := []byte("dst")
		got, err := client.Seal(dst, frameOf(10, 0))
		if !errors.Is(err, ErrKeyExhausted) || string(got) != "dst" {
			t.Fatalf("Seal past the limit: %q, %v", got, err)
		}
	}
	if st := client.Stats(); st.Sealed != CounterLimit-1 {
		t.Fatalf("Sealed = %d", st.Sealed)
	}
}

func TestNewSessionErrors(t *testing.T) {
	for name, ekm := range map[string][]byte{
		"empty": nil,
		"short": testEKM()[:ExporterLen-1],
		"long":  append(testEKM(), 0),
		"zeros": make([]byte, ExporterLen),
		"equal halves": append(testEKM()[:ExporterLen/2:ExporterLen/2],
			testEKM()[:ExporterLen/2]...),
	} {
		if _, err := NewSession(ekm, true); !errors.Is(err, ErrKeyMaterial) {
			t.Errorf("%s: %v, want ErrKeyMaterial", name, err)
		}
	}
}

func TestInPlace(t *testing.T) {
	client, server := pair(t)
	frame := frameOf(500, 3)
	buf := make([]byte, HeaderLen+len(frame)+TagLen)
	copy(buf[HeaderLen:], frame)
	pkt, err := client.Seal(buf[:0], buf[HeaderLen:HeaderLen+len(frame)])
	if err != nil || &pkt[0] != &buf[0] || len(pkt) != len(buf) {
		t.Fatalf("in-place Seal: %v (reused buffer: %v)", err, &pkt[0] == &buf[0])
	}
	got, err := server.Open(pkt[HeaderLen:HeaderLen], pkt)
	if err != nil || !bytes.Equal(got, frame) || &got[0] != &buf[HeaderLen] {
		t.Fatalf("in-place Open: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	client, server := pair(t)
	const workers, each = 8, 2000
	pkts := make([][][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				pkt, err := client.Seal(nil, frameOf(40, byte(i)))
				if err != nil {
					t.Error(err)
					return
				}
				pkts[w] = append(pkts[w], pkt)
			}
		})
	}
	wg.Wait()
	byCtr := make([][]byte, workers*each+1)
	for _, ps := range pkts {
		for _, p := range ps {
			ctr := binary.BigEndian.Uint64(p[counterOff:])
			if ctr < 1 || ctr > workers*each || byCtr[ctr] != nil {
				t.Fatalf("counter %d repeated or out of range", ctr)
			}
			byCtr[ctr] = p
		}
	}
	// Open concurrently too, each packet offered by two goroutines: exactly
	// one wins. Chunks keep the reordering inside the window whatever the
	// scheduler does.
	const chunk = WindowSize / 2
	for lo := 1; lo <= workers*each; lo += chunk {
		for w := range 2 * workers {
			wg.Go(func() {
				dst := make([]byte, 0, 64)
				for c := lo + w%workers; c < min(lo+chunk, len(byCtr)); c += workers {
					_, err := server.Open(dst, byCtr[c])
					if err != nil && !errors.Is(err, ErrReplay) {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	if st := server.Stats(); st.Opened != workers*each || st.Replayed != workers*each {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	client, server := pair(t)
	frame := frameOf(1400, 0)
	const runs = 200
	pkts := make([][]byte, runs+1) // AllocsPerRun calls once more to warm up
	for i := range pkts {
		pkts[i] = mustSeal(t, client, frame)
	}
	dst := make([]byte, 0, 2048)
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := client.Seal(dst, frame); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Seal: %v allocations per packet", a)
	}
	i := 0
	if a := testing.AllocsPerRun(runs, func() {
		if _, err := server.Open(dst, pkts[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); a != 0 {
		t.Errorf("Open: %v allocations per packet", a)
	}
}
