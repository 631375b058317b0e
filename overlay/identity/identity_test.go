package identity

import (
	"crypto/sha256"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// setup runs the operator's path: ipopctl ca init, ipopctl cert issue.
func setup(t *testing.T, pfx ...string) (dir string, ca *CA, certFile, keyFile string, id nodeid.ID) {
	t.Helper()
	dir = t.TempDir()
	ca, err := InitCA(testNetwork, filepath.Join(dir, "ca"), 24*time.Hour)
	if err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	certFile, keyFile, id, err = IssueToDir(filepath.Join(dir, "ca"), "alpha", prefixes(t, pfx...), time.Hour, filepath.Join(dir, "node"))
	if err != nil {
		t.Fatalf("IssueToDir: %v", err)
	}
	return dir, ca, certFile, keyFile, id
}

func TestRoundTrip(t *testing.T) {
	dir, ca, certFile, keyFile, id := setup(t, "10.254.0.1/32", "fd54::1/128")
	caCert, err := LoadCACert(filepath.Join(dir, "ca", "ca.crt"))
	if err != nil {
		t.Fatalf("LoadCACert: %v", err)
	}
	if !caCert.Equal(ca.Cert) {
		t.Fatal("ca.crt differs from the CA InitCA returned")
	}
	node, err := LoadNode(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadNode: %v", err)
	}
	addrs := map[string]netip.Prefix{
		"tap.address":  netip.MustParsePrefix("10.254.0.1/16"),
		"tap.address6": netip.MustParsePrefix("fd54::1/64"),
		"unset":        {},
	}
	if err := CheckNode(node, certFile, caCert, "ca.crt", testNetwork, addrs, time.Now()); err != nil {
		t.Fatalf("CheckNode: %v", err)
	}
	if node.Name != "alpha" || node.Network != testNetwork || node.ID != id {
		t.Errorf("node = %v %q %q, want alpha/%v in %q", node.ID, node.Name, node.Network, id, testNetwork)
	}
	if got := describePrefixes(node.Prefixes); got != "10.254.0.1/32, fd54::1/128" {
		t.Errorf("prefixes = %s", got)
	}
	if want := "peer(alpha/" + id.String()[:8] + ")"; node.String() != want {
		t.Errorf("String() = %q, want %q", node.String(), want)
	}
	if node.TLS.Leaf != node.Cert || len(node.TLS.Certificate) != 1 || node.TLS.PrivateKey != node.Key {
		t.Error("TLS certificate not filled in")
	}
	// The CA reloads with the same key and network.
	ca2, err := LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if ca2.Network != testNetwork || !ca2.Cert.Equal(ca.Cert) || !keyMatches(ca2.Key, ca.Cert) {
		t.Error("LoadCA returned a different CA")
	}
}

func TestNodeIDStable(t *testing.T) {
	_, _, certFile, keyFile, id := setup(t, "10.254.0.1/32")
	a, err := LoadNode(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadNode(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	fromKey, err := IDOf(a.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	fromCert, err := IDOf(a.Cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != id || b.ID != id || fromKey != id || fromCert != id {
		t.Errorf("IDs differ: issued %v, loads %v %v, IDOf key %v, cert %v", id, a.ID, b.ID, fromKey, fromCert)
	}
	// For our own certificates the canonical encoding is the one signed.
	if sum := nodeid.ID(sha256.Sum256(a.Cert.RawSubjectPublicKeyInfo)); sum != id {
		t.Errorf("SHA-256(SPKI) = %v, want %v", sum, id)
	}
}

func TestLoadNodeKeyMismatch(t *testing.T) {
	dir, _, certFile, _, _ := setup(t, "10.254.0.1/32")
	_, otherKey, _, err := IssueToDir(filepath.Join(dir, "ca"), "beta", nil, time.Hour, filepath.Join(dir, "node"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadNode(certFile, otherKey)
	if !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), "does not match certificate") {
		t.Fatalf("LoadNode with beta's key: %v", err)
	}
}

func TestRefuseOverwrite(t *testing.T) {
	dir, _, certFile, keyFile, _ := setup(t, "10.254.0.1/32")
	before := readAll(t, certFile, keyFile)

	if _, err := InitCA(testNetwork, filepath.Join(dir, "ca"), time.Hour); !errors.Is(err, ErrExists) {
		t.Errorf("InitCA over an existing CA: %v", err)
	}
	_, _, _, err := IssueToDir(filepath.Join(dir, "ca"), "alpha", nil, time.Hour, filepath.Join(dir, "node"))
	if !errors.Is(err, ErrExists) {
		t.Errorf("IssueToDir over an existing node: %v", err)
	}
	if after := readAll(t, certFile, keyFile); after != before {
		t.Error("existing files changed")
	}

	// Only one of the pair present: still refused, and nothing is written.
	caDir := filepath.Join(dir, "ca2")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caDir, "ca.key"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(testNetwork, caDir, time.Hour); !errors.Is(err, ErrExists) {
		t.Errorf("InitCA with ca.key present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(caDir, "ca.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ca.crt written despite refusal: %v", err)
	}
}

func TestFileModes(t *testing.T) {
	dir, _, certFile, keyFile, _ := setup(t)
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(dir, "ca"), 0o700 | os.ModeDir},
		{filepath.Join(dir, "ca", "ca.key"), 0o600},
		{filepath.Join(dir, "ca", "ca.crt"), 0o644},
		{filepath.Join(dir, "node"), 0o700 | os.ModeDir},
		{keyFile, 0o600},
		{certFile, 0o644},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}
}

func TestBadNames(t *testing.T) {
	ca := testCA(t, testNetwork)
	for _, name := range []string{"", "../x", "a/b", ".hidden", "-x", "a b", strings.Repeat("a", 64)} {
		if _, _, err := ca.Issue(name, nil, time.Hour); err == nil {
			t.Errorf("Issue(%q) succeeded", name)
		}
	}
	if _, err := NewCA("bad/net", time.Hour); err == nil {
		t.Error("NewCA accepted a network name with '/'")
	}
	for _, d := range []time.Duration{0, -time.Minute} {
		if _, _, err := ca.Issue("alpha", nil, d); err == nil {
			t.Errorf("Issue with validity %v succeeded", d)
		}
	}
	if _, _, err := ca.Issue("alpha", []netip.Prefix{{}}, time.Hour); err == nil {
		t.Error("Issue accepted an invalid prefix")
	}
	if _, _, err := ca.Issue("alpha", prefixes(t, "::ffff:10.0.0.1/128"), time.Hour); err == nil {
		t.Error("Issue accepted an IPv4-mapped prefix")
	}
}

func TestIssueMasksAndClamps(t *testing.T) {
	ca := testCA(t, testNetwork)
	certPEM, _, err := ca.Issue("alpha", prefixes(t, "10.254.0.1/24", "10.254.0.0/24"), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "alpha.crt")
	if err := os.WriteFile(f, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cert, err := readCertFile(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Verify(cert, ca.Cert, testNetwork, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := describePrefixes(p.Prefixes); got != "10.254.0.0/24" {
		t.Errorf("prefixes = %s, want 10.254.0.0/24", got)
	}
	if !p.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want clamped to CA's %v", p.NotAfter, ca.Cert.NotAfter)
	}
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.254.0.0" || cert.DNSNames[0] != "alpha" {
		t.Errorf("SANs = %v %v", cert.DNSNames, cert.IPAddresses)
	}
}

func readAll(t *testing.T, files ...string) string {
	t.Helper()
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
