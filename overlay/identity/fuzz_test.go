package identity

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The seed corpora under testdata/fuzz hold one valid input each, so the
// fuzzers start from the accepting path. The valid certificate is signed by
// testdata/fuzz-ca.crt (whose key was thrown away) and valid from 2025 for a
// century; fuzzNow lies inside that window. Regenerate everything with
//
//	go test ./overlay/identity -run TestUpdateFuzzSeeds -update-seeds
var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz-ca.crt and the fuzz seed corpora")

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
	der := readSeed(t, "FuzzVerifyRaw", "valid-leaf")
	if _, err := VerifyRaw([][]byte{der}, ca, testNetwork, fuzzNow); err != nil {
		t.Errorf("valid-leaf seed: %v", err)
	}
	if _, err := parsePrefixesExt(readSeed(t, "FuzzParsePrefixesExt", "valid")); err != nil {
		t.Errorf("valid extension seed: %v", err)
	}
}

func readSeed(t *testing.T, fuzzer, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", fuzzer, name))
	if err != nil {
		t.Fatal(err)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "go test fuzz v1\n[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	s, err := strconv.Unquote(lit)
	if !ok || !ok2 || err != nil {
		t.Fatalf("seed %s/%s is not a single []byte value: %v", fuzzer, name, err)
	}
	return []byte(s)
}

func TestUpdateFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
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
	writeSeeds(t, "FuzzVerifyRaw", map[string][]byte{
		"valid-leaf": leaf.Raw,
		"ca-as-leaf": ca.Cert.Raw,
		"other-ca":   other.Cert.Raw,
		"truncated":  leaf.Raw[:len(leaf.Raw)/2],
		"empty":      {},
	})
	writeSeeds(t, "FuzzParsePrefixesExt", map[string][]byte{
		"valid":     ext.Value,
		"empty-seq": {0x30, 0x00},
		"host-bits": utf8Seq("10.254.0.1/24"),
		"printable": {0x30, 0x0f, 0x13, 0x0d, '1', '0', '.', '2', '5', '4', '.', '0', '.', '1', '/', '3', '2'},
	})
}

func writeSeeds(t *testing.T, fuzzer string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", fuzzer)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
