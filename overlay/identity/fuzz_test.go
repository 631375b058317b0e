package identity

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/fuzzseed"
)

// The seed corpora under testdata/fuzz hold one valid input each, so the
// fuzzers start from the accepting path. The valid certificate is signed by
// testdata/fuzz-ca.crt (whose key was thrown away) and valid from 2025 for a
// century; fuzzNow lies inside that window. Regenerate everything with
//
//	go test ./overlay/identity -run TestUpdateFuzzSeeds -update-seeds

var (
	fuzzNow   = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

const fuzzCAFile = "testdata/fuzz-ca.crt"

func FuzzVerifyRaw(f *testing.F) {
	ca, err := readCertFile(fuzzCAFile)
	if err != nil {
		f.Fatal(err)
	}
	sentinels := []error{ErrWrongCA, ErrExpired, ErrNotYetValid, ErrWrongNetwork, ErrBadCert}
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := VerifyRaw([][]byte{der}, ca, testNetwork, fuzzNow)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || p != nil {
				t.Fatalf("error %q wraps %d sentinels (peer %v)", err, n, p)
			}
			return
		}
		// Accepted: the ID must be the key's, whatever the input looked like.
		id, err := IDOf(p.Cert.PublicKey)
		if err != nil || id != p.ID || p.Network != testNetwork || p.Name == "" {
			t.Fatalf("accepted %v with inconsistent fields (IDOf: %v, %v)", p, id, err)
		}
	})
}

func FuzzParsePrefixesExt(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		prefixes, err := parsePrefixesExt(der)
		if err != nil {
			return
		}
		// One encoding per meaning: whatever parses re-encodes to the input.
		ext, err := marshalPrefixesExt(prefixes)
		if err != nil {
			t.Fatalf("re-encode %v: %v", prefixes, err)
		}
		if string(ext.Value) != string(der) {
			t.Fatalf("% x parsed as %v, which encodes as % x", der, prefixes, ext.Value)
		}
		for _, p := range prefixes {
			if checkPrefix(p) != nil || !(&Peer{Prefixes: prefixes}).Allows(p.Addr()) {
				t.Fatalf("accepted unusable prefix %v", p)
			}
		}
	})
}

// TestFuzzSeedsValid keeps the committed seeds honest: the valid seed must
// still be accepted, or the fuzzers would never reach the accepting path.
func TestFuzzSeedsValid(t *testing.T) {
	ca, err := readCertFile(fuzzCAFile)
	if err != nil {
		t.Fatal(err)
	}
	der := fuzzseed.Read(t, "FuzzVerifyRaw", "valid-leaf")
	if _, err := VerifyRaw([][]byte{der}, ca, testNetwork, fuzzNow); err != nil {
		t.Errorf("valid-leaf seed: %v", err)
	}
	if _, err := parsePrefixesExt(fuzzseed.Read(t, "FuzzParsePrefixesExt", "valid")); err != nil {
		t.Errorf("valid extension seed: %v", err)
	}
}

func TestUpdateFuzzSeeds(t *testing.T) {
	if !*fuzzseed.Update {
		t.Skip("run with -update-seeds to regenerate")
	}
	ca, err := newCA(testNetwork, fuzzStart, 100*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := ca.issue("alpha", prefixes(t, "10.254.0.1/32", "fd54::/64"), fuzzStart, fuzzStart.Add(100*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other, err := newCA("other", fuzzStart, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := marshalPrefixesExt(prefixes(t, "10.254.0.0/24", "fd54::1/128"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(fuzzCAFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fuzzCAFile, encodeCert(ca.Cert.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	fuzzseed.Write(t, "FuzzVerifyRaw", map[string][]byte{
		"valid-leaf": leaf.Raw,
		"ca-as-leaf": ca.Cert.Raw,
		"other-ca":   other.Cert.Raw,
		"truncated":  leaf.Raw[:len(leaf.Raw)/2],
		"empty":      {},
	})
	fuzzseed.Write(t, "FuzzParsePrefixesExt", map[string][]byte{
		"valid":     ext.Value,
		"empty-seq": {0x30, 0x00},
		"host-bits": utf8Seq("10.254.0.1/24"),
		"printable": {0x30, 0x0f, 0x13, 0x0d, '1', '0', '.', '2', '5', '4', '.', '0', '.', '1', '/', '3', '2'},
	})
}
