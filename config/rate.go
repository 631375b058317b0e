package config

import (
	"math/big"
	"strconv"
	"strings"
)

// Rate is a data rate in bits per second. Prefixes are decimal (k = 1000),
// as in tc and link speeds.
type Rate int64

// Common rates.
const (
	Kbit Rate = 1000
	Mbit Rate = 1000 * Kbit
	Gbit Rate = 1000 * Mbit
)

// String prints the rate with the largest prefix that divides it exactly,
// so ParseRate(r.String()) == r: "1Mbit", "1500kbit", "7bit".
func (r Rate) String() string {
	sign, n := "", uint64(r)
	if r < 0 {
		sign, n = "-", -n // two's complement: exact even for MinInt64
	}
	for _, u := range [...]struct {
		div  uint64
		unit string
	}{{1e9, "Gbit"}, {1e6, "Mbit"}, {1e3, "kbit"}} {
		if n != 0 && n%u.div == 0 {
			return sign + strconv.FormatUint(n/u.div, 10) + u.unit
		}
	}
	return sign + strconv.FormatUint(n, 10) + "bit"
}

// MarshalText writes the String form.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText accepts what ParseRate accepts.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRate reads a rate in bits per second: a number ("1000000", "1.5"),
// an optional prefix k/K, M or G, an optional unit "bit", "bits" or "b", and
// after a unit an optional "/s" or "ps": "1Mbit", "500kbit", "2Gbit",
// "1000bit", "1Mbps", "1Mbit/s". A plain number is bits per second. Bytes
// ("1MB", "1MBps") and negative rates are rejected rather than guessed at,
// since a factor of 8 in a link threshold is a silent misconfiguration.
// Errors wrap ErrInvalid.
func ParseRate(s string) (Rate, error) {
	r, problem := parseRate(s)
	if problem != "" {
		return 0, invalidf("rate %s %s", quote(s), problem)
	}
	return r, nil
}

// maxRateDigits bounds the number part so big.Rat never works on a huge
// input; int64 has 19 digits.
const maxRateDigits = 40

// parseRate returns the rate or a problem phrase that reads after the value
// ("is negative"), for use in both ParseRate and KeyError.
func parseRate(s string) (Rate, string) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, "is empty"
	}
	if t[0] == '-' {
		return 0, "is negative"
	}
	i, dots := 0, 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		if t[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := t[:i], strings.TrimLeft(t[i:], " ")
	if num == "" || num == "." || dots > 1 {
		return 0, "does not start with a number"
	}
	if len(num) > maxRateDigits {
		return 0, "is too large"
	}

	mult := int64(1)
	if unit != "" {
		switch unit[0] {
		case 'k', 'K':
			mult, unit = 1e3, unit[1:]
		case 'M':
			mult, unit = 1e6, unit[1:]
		case 'G':
			mult, unit = 1e9, unit[1:]
		case 'm':
			return 0, "has prefix m (milli); mega is M"
		}
	}
	bare, ok := strings.CutSuffix(unit, "/s")
	if !ok {
		bare = strings.TrimSuffix(unit, "ps")
	}
	switch bare {
	case "", "bit", "bits", "b":
		if bare == "" && unit != "" {
			return 0, "has a /s or ps suffix without a unit; write e.g. 1Mbit/s"
		}
	case "B", "byte", "bytes", "Byte", "Bytes":
		hint := ""
		if r, p := parseRate(num + t[i:len(t)-len(unit)] + "bit"); p == "" && r <= Rate(1<<63-1)/8 {
			// Keep the user's prefix: "1MB" becomes "8Mbit".
			hint = " (" + strings.TrimSpace(t) + " = " + (r * 8).String() + ")"
		}
		return 0, "is in bytes, not bits" + hint
	default:
		return 0, "has an unknown unit " + quote(unit) + "; use bit with an optional k, M or G prefix"
	}

	var v big.Rat
	if _, ok := v.SetString(num); !ok {
		return 0, "does not start with a number"
	}
	v.Mul(&v, new(big.Rat).SetInt64(mult))
	if !v.IsInt() {
		return 0, "is not a whole number of bits per second"
	}
	if !v.Num().IsInt64() {
		return 0, "is too large"
	}
	return Rate(v.Num().Int64()), ""
}
