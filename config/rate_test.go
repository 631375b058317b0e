package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want Rate
	}{
		{"1Mbit", Mbit},
		{"500kbit", 500 * Kbit},
		{"500Kbit", 500 * Kbit},
		{"2Gbit", 2 * Gbit},
		{"1000bit", 1000},
		{"1000000", Mbit}, // plain numbers are bits per second
		{"1Mbps", Mbit},
		{"1Mbit/s", Mbit},
		{"1Mb/s", Mbit},
		{"1Mbits", Mbit},
		{"1.5Mbit", 1500 * Kbit},
		{" 10 Mbit ", 10 * Mbit},
		{"1k", Kbit},
		{"0", 0},
		{"9223372036854775807bit", 1<<63 - 1},
	}
	for _, tt := range good {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}

	bad := []struct{ in, want string }{
		{"", "empty"},
		{"-1Mbit", "negative"},
		{"1MB", "bytes, not bits (1MB = 8Mbit)"},
		{"1MBps", "bytes"},
		{"100 bytes", "bytes"},
		{"1mbit", "milli"},
		{"1Tbit", "unknown unit"},
		{"fast", "number"},
		{"1.2.3bit", "number"},
		{"1.5bit", "whole number"},
		{"1Mps", "without a unit"},
		{"10Gbit0", "unknown unit"},
		{"9223372036854775808bit", "too large"},
		{"99999999999Gbit", "too large"},
		{strings.Repeat("9", 100), "too large"},
	}
	for _, tt := range bad {
		_, err := ParseRate(tt.in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRate(%q) err = %v; want ErrInvalid mentioning %q", tt.in, err, tt.want)
		}
	}
}

func TestRateString(t *testing.T) {
	for r, want := range map[Rate]string{
		0: "0bit", 7: "7bit", Kbit: "1kbit", 1500 * Kbit: "1500kbit", Mbit: "1Mbit", 2 * Gbit: "2Gbit",
		1001: "1001bit", -Mbit: "-1Mbit", -1 << 63: "-9223372036854775808bit",
	} {
		if got := r.String(); got != want {
			t.Errorf("Rate(%d).String() = %q, want %q", int64(r), got, want)
		}
	}
	var r Rate
	if err := r.UnmarshalText([]byte("3Mbit")); err != nil || r != 3*Mbit {
		t.Errorf("UnmarshalText = %v, %v", r, err)
	}
	if b, _ := r.MarshalText(); string(b) != "3Mbit" {
		t.Errorf("MarshalText = %s", b)
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"tap.mode", "tap.mtu", "tap.name", "tap", "network"}
	for name, want := range map[string]string{
		"tap.mdoe": "tap.mode",
		"tap.mut":  "tap.mtu",
		"TAP":      "tap",
		"netwrok":  "network",
		"tap.xy":   "",
		"zzz":      "",
	} {
		if got := nearest(name, keys); got != want {
			t.Errorf("nearest(%q) = %q, want %q", name, got, want)
		}
	}
}
