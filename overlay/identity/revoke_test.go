package identity

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

func TestRevocations(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	ca, err := InitCA("demo", caDir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, b := nodeid.ID{1}, nodeid.ID{2}
	path, r, err := RevokeInDir(caDir, []nodeid.ID{b}, time.Now())
	if err != nil || r.Seq != 1 || !r.Has(b) || r.Has(a) {
		t.Fatalf("first revocation: %v %+v", err, r)
	}
	_, r, err = RevokeInDir(caDir, []nodeid.ID{a, b}, time.Now())
	if err != nil || r.Seq != 2 || !r.Has(a) || !r.Has(b) || len(r.Nodes) != 2 {
		t.Fatalf("second: %v %+v", err, r)
	}
	got, err := LoadRevocations(path, ca.Cert, "demo")
	if err != nil || got.Seq != 2 || !got.Has(a) {
		t.Fatalf("load: %v %+v", err, got)
	}
	if _, err := LoadRevocations(path, ca.Cert, "other"); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("other network: %v", err)
	}
	other, _ := NewCA("demo", time.Hour)
	if _, err := LoadRevocations(path, other.Cert, "demo"); !errors.Is(err, ErrWrongCA) {
		t.Errorf("other CA: %v", err)
	}
	// A list altered after signing (a node taken off it) is refused.
	data, _ := os.ReadFile(path)
	forged, _ := other.SignRevocations(&Revocations{Seq: 99})
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"no sig":    data[:strings.Index(string(data), "-----BEGIN IPOPD REVOCATIONS SIGNATURE")],
		"other CA":  forged,
		"truncated": data[:len(data)/2],
	} {
		if _, err := ParseRevocations(bad, ca.Cert, "demo"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseRevocations(f *testing.F) {
	ca, _ := NewCA("demo", time.Hour)
	good, _ := ca.SignRevocations(&Revocations{Seq: 1, Issued: time.Unix(1, 0), Nodes: []nodeid.ID{{1}}})
	f.Add(good)
	f.Add([]byte("-----BEGIN IPOPD REVOCATIONS-----\n-----END IPOPD REVOCATIONS-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRevocations(data, ca.Cert, "demo")
		// Only what the CA signed gets through; the fuzzer cannot forge
		// that, so what passes is a seed, for this network, sorted.
		if err == nil && (r.Network != "demo" || !slices.IsSortedFunc(r.Nodes, nodeid.ID.Compare)) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
