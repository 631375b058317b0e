package topology

import (
	"encoding/binary"
	"math/bits"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Ring arithmetic. A node ID read big-endian is a number in [0, 2^256), and
// the ring is that space with wrap-around: clockwise is increasing, and
// 2^256-1 is followed by 0. Every distance here is exact 256-bit modular
// arithmetic on four words, with no allocation, because NextHop runs it
// for every routed packet.

// u256 is a node ID as four big-endian words: w[0] is the most significant.
type u256 [4]uint64

func load(id nodeid.ID) u256 {
	return u256{
		binary.BigEndian.Uint64(id[0:]), binary.BigEndian.Uint64(id[8:]),
		binary.BigEndian.Uint64(id[16:]), binary.BigEndian.Uint64(id[24:]),
	}
}

func (x u256) id() nodeid.ID {
	var id nodeid.ID
	binary.BigEndian.PutUint64(id[0:], x[0])
	binary.BigEndian.PutUint64(id[8:], x[1])
	binary.BigEndian.PutUint64(id[16:], x[2])
	binary.BigEndian.PutUint64(id[24:], x[3])
	return id
}

// sub returns x - y mod 2^256.
func (x u256) sub(y u256) u256 {
	var z u256
	var b uint64
	z[3], b = bits.Sub64(x[3], y[3], 0)
	z[2], b = bits.Sub64(x[2], y[2], b)
	z[1], b = bits.Sub64(x[1], y[1], b)
	z[0], _ = bits.Sub64(x[0], y[0], b)
	return z
}

// add returns x + y mod 2^256.
func (x u256) add(y u256) u256 {
	var z u256
	var c uint64
	z[3], c = bits.Add64(x[3], y[3], 0)
	z[2], c = bits.Add64(x[2], y[2], c)
	z[1], c = bits.Add64(x[1], y[1], c)
	z[0], _ = bits.Add64(x[0], y[0], c)
	return z
}

// cmp compares x and y as unsigned numbers: -1, 0 or +1.
func (x u256) cmp(y u256) int {
	for i := range x {
		switch {
		case x[i] < y[i]:
			return -1
		case x[i] > y[i]:
			return 1
		}
	}
	return 0
}

// shr returns x >> n for n < 64.
func (x u256) shr(n uint) u256 {
	return u256{
		x[0] >> n,
		x[1]>>n | x[0]<<(64-n),
		x[2]>>n | x[1]<<(64-n),
		x[3]>>n | x[2]<<(64-n),
	}
}

// cw returns the clockwise distance from a to b: how far b lies ahead of
// a, (b - a) mod 2^256. cw(a, a) is 0; cw(a, b) + cw(b, a) is 2^256 for
// a ≠ b.
func cw(a, b u256) u256 { return b.sub(a) }

// ringDist returns the shorter way round between a and b, the metric that
// greedy routing decreases: min(cw(a, b), cw(b, a)).
func ringDist(a, b u256) u256 {
	d := cw(a, b)
	if e := cw(b, a); e.cmp(d) < 0 {
		return e
	}
	return d
}
