package igmp

// Time codes on the wire.
//
// IGMPv3 and MLDv2 carry long intervals in a small floating-point format
// (RFC 3376 §4.1.1 and §4.1.7, RFC 3810 §5.1.3 and §5.1.9):
//
//	8-bit code:   c < 128:    value = c
//	              c >= 128:   |1|exp(3)|mant(4)|   value = (mant|0x10) << (exp+3)
//	16-bit code:  c < 32768:  value = c
//	              c >= 32768: |1|exp(3)|mant(12)|  value = (mant|0x1000) << (exp+3)
//
// The unit depends on the field: IGMPv3 Max Resp Code counts 1/10 s, MLDv2
// Maximum Response Code counts milliseconds, and QQIC (the same 8-bit format
// in both protocols) counts seconds. IGMPv2 and MLDv1 use plain integers in
// the same units (1/10 s in 8 bits, ms in 16 bits).

import "time"

const (
	maxCode8  = 0x1f << 10   // 31744: the largest value an 8-bit code holds
	maxCode16 = 0x1fff << 10 // 8387584: the largest value a 16-bit code holds
)

// The RFCs' floating-point codes (RFC 3376 §4.1.1 for 8 bits, RFC 3810
// §5.1.3 for 16): below the top bit the code is the value; above it, the
// code is 1 | exp (3 bits) | mant (m bits) and the value is
// (mant | 1<<m) << (exp + 3). m is 4 for 8-bit codes and 12 for 16-bit ones.

func decodeFloat(c uint64, m uint) uint64 {
	top := uint64(1) << (m + 3)
	if c < top {
		return c
	}
	exp, mant := (c>>m)&7, c&(1<<m-1)
	return (mant | 1<<m) << (exp + 3)
}

// encodeFloat returns the largest m-bit-mantissa code whose value is at most v.
func encodeFloat(v uint64, m uint) uint64 {
	top := uint64(1) << (m + 3)
	if v < top {
		return v
	}
	exp := uint64(7)
	for v < (1<<m)<<(exp+3) {
		exp--
	}
	mant := v>>(exp+3) - 1<<m
	if mant > 1<<m-1 { // only above the largest value: clamp
		mant = 1<<m - 1
	}
	return top | exp<<m | mant
}

func decode8(c uint8) uint64   { return decodeFloat(uint64(c), 4) }
func encode8(v uint64) uint8   { return uint8(encodeFloat(v, 4)) }
func decode16(c uint16) uint64 { return decodeFloat(uint64(c), 12) }
func encode16(v uint64) uint16 { return uint16(encodeFloat(v, 12)) }

// units converts d to whole units, rounding down; negative d is 0.
func units(d, unit time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d / unit)
}

// EncodeIGMPv3Code returns the IGMPv3 Max Resp Code (units of 1/10 s) for
// d. It rounds down, so hosts always answer within d: the router's timers
// (group membership interval, last member query time) assume they do.
// Values above 3174.4 s are clamped.
func EncodeIGMPv3Code(d time.Duration) uint8 { return encode8(units(d, 100*time.Millisecond)) }

// DecodeIGMPv3Code returns the time an IGMPv3 Max Resp Code stands for.
func DecodeIGMPv3Code(c uint8) time.Duration {
	return time.Duration(decode8(c)) * 100 * time.Millisecond
}

// EncodeMLDv2Code returns the MLDv2 Maximum Response Code (units of 1 ms)
// for d, rounding down like EncodeIGMPv3Code. Values above 8387.584 s are
// clamped.
func EncodeMLDv2Code(d time.Duration) uint16 { return encode16(units(d, time.Millisecond)) }

// DecodeMLDv2Code returns the time an MLDv2 Maximum Response Code stands for.
func DecodeMLDv2Code(c uint16) time.Duration { return time.Duration(decode16(c)) * time.Millisecond }

// EncodeQQIC returns the Querier's Query Interval Code (units of 1 s, the
// same in IGMPv3 and MLDv2) for d. Unlike the response codes it rounds up:
// other routers adopt it as their query interval (RFC 3376 §4.1.7) and
// derive the other-querier-present timeout from it, and a value below ours
// would let them take over between two of our queries. Values above
// 31744 s are clamped.
func EncodeQQIC(d time.Duration) uint8 {
	s := units(d+time.Second-1, time.Second)
	c := encode8(s)
	if decode8(c) < s && c < 0xff {
		c++ // codes are monotonic: the next one is the next larger value
	}
	return c
}

// DecodeQQIC returns the query interval a QQIC stands for.
func DecodeQQIC(c uint8) time.Duration { return time.Duration(decode8(c)) * time.Second }

// v2Code is the IGMPv2 Max Response Time: 1/10 s, linear, at most 25.5 s.
func v2Code(d time.Duration) uint8 { return uint8(min(units(d, 100*time.Millisecond), 0xff)) }

// mldv1Code is the MLDv1 Maximum Response Delay: ms, linear, at most 65.535 s.
func mldv1Code(d time.Duration) uint16 { return uint16(min(units(d, time.Millisecond), 0xffff)) }
