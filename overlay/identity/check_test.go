package identity

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckNodeErrors(t *testing.T) {
	now := time.Now()
	ca := testCA(t, testNetwork)
	other := testCA(t, testNetwork)
	otherNet := testCA(t, "other")
	pfx := prefixes(t, "10.254.0.1/32", "fd54::1/128")
	tap := map[string]netip.Prefix{"tap.address": netip.MustParsePrefix("10.254.0.1/16")}
	good := issueWindow(t, ca, "alpha", pfx, now.Add(-time.Hour), now.Add(time.Hour))
	day := func(d int) time.Time { return time.Date(2026, 1, d, 15, 4, 5, 0, time.UTC) }
	oldCA, err := newCA(testNetwork, day(1), 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		id    *Identity
		ca    *CA
		now   time.Time
		addrs map[string]netip.Prefix
		want  error
		msg   string
	}{
		{"wrong CA", good, other, now, tap, ErrWrongCA,
			"certificate alpha.crt was not issued by the CA in ca.crt (wrong CA)"},
		{"expired", good, ca, now.Add(2 * time.Hour), tap, ErrExpired,
			"certificate alpha.crt expired on " + good.NotAfter.UTC().Format(timeLayout)},
		{"expired exact format", issueWindow(t, oldCA, "alpha", pfx, day(1), day(2)), oldCA, day(3), tap, ErrExpired,
			"certificate alpha.crt expired on 2026-01-02 15:04 UTC"},
		{"not yet valid", issueWindow(t, ca, "alpha", pfx, now.Add(time.Hour), now.Add(2*time.Hour)), ca, now, tap, ErrNotYetValid,
			"certificate alpha.crt is not valid until " + now.Add(time.Hour).UTC().Format(timeLayout)},
		{"CA expired", good, ca, ca.Cert.NotAfter.Add(time.Minute), tap, ErrExpired,
			"the CA in ca.crt expired on " + ca.Cert.NotAfter.UTC().Format(timeLayout)},
		{"other network", issueWindow(t, otherNet, "alpha", pfx, now.Add(-time.Hour), now.Add(time.Hour)), otherNet, now, tap, ErrWrongNetwork,
			`certificate alpha.crt is for network "other", config network is "demo"`},
		{"v4 not allowed", good, ca, now, map[string]netip.Prefix{"tap.address": netip.MustParsePrefix("10.254.0.9/16")}, ErrAddressNotAllowed,
			"certificate alpha.crt does not allow tap.address 10.254.0.9/16; it allows 10.254.0.1/32, fd54::1/128"},
		{"v6 not allowed", good, ca, now, map[string]netip.Prefix{"tap.address": netip.MustParsePrefix("10.254.0.1/16"), "tap.address6": netip.MustParsePrefix("fd54::2/64")}, ErrAddressNotAllowed,
			"certificate alpha.crt does not allow tap.address6 fd54::2/64; it allows 10.254.0.1/32, fd54::1/128"},
		{"no prefixes", issueWindow(t, ca, "alpha", nil, now.Add(-time.Hour), now.Add(time.Hour)), ca, now, tap, ErrAddressNotAllowed,
			"certificate alpha.crt does not allow tap.address 10.254.0.1/16; it allows no addresses"},
		{"range", issueWindow(t, ca, "alpha", prefixes(t, "10.254.0.0/24"), now.Add(-time.Hour), now.Add(time.Hour)), ca, now,
			map[string]netip.Prefix{"tap.address": netip.MustParsePrefix("10.254.0.200/16")}, nil, ""},
		{"outside range", issueWindow(t, ca, "alpha", prefixes(t, "10.254.0.0/24"), now.Add(-time.Hour), now.Add(time.Hour)), ca, now,
			map[string]netip.Prefix{"tap.address": netip.MustParsePrefix("10.254.1.1/16")}, ErrAddressNotAllowed,
			"certificate alpha.crt does not allow tap.address 10.254.1.1/16; it allows 10.254.0.0/24"},
		{"key mismatch", &Identity{Peer: good.Peer, Key: other.Key}, ca, now, tap, ErrBadCert,
			"the node key does not match certificate alpha.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNode(tt.id, "alpha.crt", tt.ca.Cert, "ca.crt", testNetwork, tt.addrs, tt.now)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && err.Error() != tt.msg {
				t.Errorf("message\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

// TestExpiredShortValidity goes through the public API only: a certificate
// issued for a minute is refused once that minute has passed.
func TestExpiredShortValidity(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitCA(testNetwork, filepath.Join(dir, "ca"), time.Hour); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _, err := IssueToDir(filepath.Join(dir, "ca"), "alpha", prefixes(t, "10.254.0.1/32"), time.Minute, dir)
	if err != nil {
		t.Fatal(err)
	}
	node, err := LoadNode(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCACert(filepath.Join(dir, "ca", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckNode(node, "alpha.crt", ca, "ca.crt", testNetwork, nil, time.Now()); err != nil {
		t.Fatalf("fresh certificate: %v", err)
	}
	err = CheckNode(node, "alpha.crt", ca, "ca.crt", testNetwork, nil, time.Now().Add(2*time.Minute))
	want := "certificate alpha.crt expired on " + node.NotAfter.UTC().Format(timeLayout)
	if !errors.Is(err, ErrExpired) || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
