package identity

import (
	"crypto/ecdsa"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testNetwork = "demo"

// testCA returns an in-memory CA valid around time.Now.
func testCA(t testing.TB, network string) *CA {
	t.Helper()
	ca, err := NewCA(network, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// issueWindow issues a certificate valid in [notBefore, notAfter].
func issueWindow(t testing.TB, ca *CA, name string, prefixes []netip.Prefix, notBefore, notAfter time.Time) *Identity {
	t.Helper()
	cert, key, err := ca.issue(name, prefixes, notBefore, notAfter)
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	peer, err := peerOf(cert, labels{cert: name})
	if err != nil {
		t.Fatalf("peerOf: %v", err)
	}
	return &Identity{Peer: *peer, Key: key}
}

// writeNode writes an issued identity to dir as <name>.crt and <name>.key.
func writeNode(t testing.TB, dir string, cert []byte, key *ecdsa.PrivateKey, name string) (certFile, keyFile string) {
	t.Helper()
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, encodeCert(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
