package topology

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The ring arithmetic is checked against math/big on random IDs and on
// the edges where carries and wrap-around happen.

var ringSize = new(big.Int).Lsh(big.NewInt(1), 256)

func bigOf(id nodeid.ID) *big.Int { return new(big.Int).SetBytes(id[:]) }

func idOf(b *big.Int) nodeid.ID {
	var id nodeid.ID
	new(big.Int).Mod(b, ringSize).FillBytes(id[:])
	return id
}

// bigCW is the clockwise distance from a to b, the naive way.
func bigCW(a, b nodeid.ID) *big.Int {
	d := new(big.Int).Sub(bigOf(b), bigOf(a))
	return d.Mod(d, ringSize)
}

func randID(rng *rand.Rand) nodeid.ID {
	var id nodeid.ID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	return id
}

// edgeIDs are values where words carry or the ring wraps.
func edgeIDs() []nodeid.ID {
	var zero, one, max, half, word nodeid.ID
	one[31] = 1
	for i := range max {
		max[i] = 0xff
	}
	half[0] = 0x80
	for i := 24; i < 32; i++ {
		word[i] = 0xff // 2^64-1: the lowest word full
	}
	return []nodeid.ID{zero, one, max, half, word, idOf(new(big.Int).Lsh(big.NewInt(1), 64))}
}

func TestRingArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := edgeIDs()
	for range 200 {
		ids = append(ids, randID(rng))
	}
	for _, a := range ids {
		if load(a).id() != a {
			t.Fatalf("load/id round trip of %x", a)
		}
		for _, b := range ids[:40] {
			x, y := load(a), load(b)
			if got, want := x.add(y).id(), idOf(new(big.Int).Add(bigOf(a), bigOf(b))); got != want {
				t.Fatalf("%x + %x = %x, want %x", a, b, got, want)
			}
			if got, want := cw(x, y).id(), idOf(bigCW(a, b)); got != want {
				t.Fatalf("cw(%x, %x) = %x, want %x", a, b, got, want)
			}
			if got, want := x.cmp(y), bigOf(a).Cmp(bigOf(b)); got != want || a.Compare(b) != want {
				t.Fatalf("cmp(%x, %x) = %d / %d, want %d", a, b, got, a.Compare(b), want)
			}
			want := bigCW(a, b)
			if back := bigCW(b, a); back.Cmp(want) < 0 {
				want = back
			}
			if got := ringDist(x, y); got.id() != idOf(want) || got != ringDist(y, x) {
				t.Fatalf("ringDist(%x, %x) = %x, want %x, symmetric", a, b, got.id(), idOf(want))
			}
		}
		for _, n := range []uint{0, 1, 2, 7, 63} {
			if got, want := load(a).shr(n).id(), idOf(new(big.Int).Rsh(bigOf(a), n)); got != want {
				t.Fatalf("%x >> %d = %x, want %x", a, n, got, want)
			}
		}
	}
}

func TestRingWrapAround(t *testing.T) {
	var max, one nodeid.ID
	for i := range max {
		max[i] = 0xff
	}
	one[31] = 1
	// From the top of the space, 0 is one step clockwise and 1 two.
	if d := cw(load(max), load(one)).id(); d != idOf(big.NewInt(2)) {
		t.Fatalf("cw(max, 1) = %x, want 2", d)
	}
	// ... and the other way round it is almost the whole ring.
	if d := cw(load(one), load(max)); d.id() != idOf(new(big.Int).Sub(ringSize, big.NewInt(2))) {
		t.Fatalf("cw(1, max) = %x", d.id())
	}
	if d := ringDist(load(max), load(one)); d.id() != idOf(big.NewInt(2)) {
		t.Fatalf("ringDist(max, 1) = %x, want 2", d.id())
	}
}
