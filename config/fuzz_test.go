package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoadYAML feeds arbitrary bytes through the whole file load: parse,
// schema walk, viper, decoding and validation. It must never panic; every
// rejection must be one line wrapping ErrInvalid; every acceptance must
// validate again.
func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte("network: demo\nnode: {name: a, cert: a, key: b, ca: c}\ntap: {address: 10.254.0.1/16}\n"))
	f.Add([]byte("tap: {mdoe: host}\n"))
	f.Add([]byte("turn: [{url: 'turn:198.18.0.1', username: u, credential: p}]\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("topology: {on_demand: {threshold: 1MB}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := loadBytes("fuzz.yaml", data, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") {
				t.Fatalf("not one config: line: %q", msg)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config fails Validate: %v", err)
		}
	})
}

// FuzzParseRate checks ParseRate never panics, never returns a negative
// rate, and that String gives back what parses to the same rate.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"1Mbit", "500kbit", "1000000", "1Mbps", "1.5Gbit/s", "1MB", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseRate(%q) error does not wrap ErrInvalid: %v", s, err)
			}
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d, negative", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d, but its String %q parses to %d, %v", s, r, r.String(), back, err)
		}
	})
}
