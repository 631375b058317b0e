package igmp

import (
	"testing"
	"time"
)

// The floating-point codes of RFC 3376 §4.1.1/§4.1.7 and RFC 3810 §5.1.3.
func TestCodes(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		code uint8
	}{
		{0, 0},
		{100 * time.Millisecond, 1},
		{10 * time.Second, 100}, // the default QRI fits the linear range
		{12700 * time.Millisecond, 127},
		{12800 * time.Millisecond, 0x80}, // mant 0, exp 0: 16<<3 = 128
		{13500 * time.Millisecond, 0x80}, // 135 rounds down to 128
		{13600 * time.Millisecond, 0x81}, // 17<<3
		{25 * time.Second, 0x8f},         // 250 → 31<<3 = 248
		{25600 * time.Millisecond, 0x90}, // 16<<4
		{3174400 * time.Millisecond, 0xff},
		{time.Hour, 0xff}, // clamped
		{-time.Second, 0},
	} {
		if got := EncodeIGMPv3Code(c.d); got != c.code {
			t.Errorf("EncodeIGMPv3Code(%v) = %#x, want %#x", c.d, got, c.code)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		code uint16
	}{
		{10 * time.Second, 10000},
		{32767 * time.Millisecond, 32767},
		{32768 * time.Millisecond, 0x8000},
		{60 * time.Second, 0x8d4c}, // 60000 = 0x1d4c<<3: exp 0, mant 0xd4c
		{65536 * time.Millisecond, 0x9000},
		{8387584 * time.Millisecond, 0xffff},
		{3 * time.Hour, 0xffff},
	} {
		got := EncodeMLDv2Code(c.d)
		if got != c.code {
			t.Errorf("EncodeMLDv2Code(%v) = %#x, want %#x", c.d, got, c.code)
		}
	}
	// QQIC rounds up: other routers must never think we query more often.
	for _, c := range []struct {
		d    time.Duration
		code uint8
	}{
		{125 * time.Second, 125},
		{1500 * time.Millisecond, 2},
		{129 * time.Second, 0x81}, // 128 < 129 ≤ 136
		{31743 * time.Second, 0xff},
		{31744 * time.Second, 0xff},
	} {
		if got := EncodeQQIC(c.d); got != c.code {
			t.Errorf("EncodeQQIC(%v) = %#x, want %#x", c.d, got, c.code)
		}
	}
}

// Every code decodes to a value that encodes back to the same code, and
// values grow with codes: each code is the floor of its own value.
func TestCodesExhaustive(t *testing.T) {
	prev := time.Duration(-1)
	for c := range 256 {
		d := DecodeIGMPv3Code(uint8(c))
		if EncodeIGMPv3Code(d) != uint8(c) || d <= prev {
			t.Fatalf("IGMPv3 code %#x: %v encodes to %#x (prev %v)", c, d, EncodeIGMPv3Code(d), prev)
		}
		if q := DecodeQQIC(uint8(c)); EncodeQQIC(q) != uint8(c) || EncodeQQIC(q-time.Second+1) != uint8(c) && c > 0 {
			t.Fatalf("QQIC %#x: %v", c, q)
		}
		prev = d
	}
	prev = -1
	for c := range 65536 {
		d := DecodeMLDv2Code(uint16(c))
		if EncodeMLDv2Code(d) != uint16(c) || d <= prev {
			t.Fatalf("MLDv2 code %#x: %v encodes to %#x (prev %v)", c, d, EncodeMLDv2Code(d), prev)
		}
		// Between two codes, encoding rounds down to the lower one.
		if c > 0 && EncodeMLDv2Code(d-time.Millisecond) != uint16(c-1) {
			t.Fatalf("MLDv2 value %v encodes to %#x, want %#x", d-time.Millisecond, EncodeMLDv2Code(d-time.Millisecond), c-1)
		}
		prev = d
	}
	if d := DecodeMLDv2Code(0xffff); d != 8387584*time.Millisecond {
		t.Errorf("largest MLDv2 code = %v", d)
	}
}
