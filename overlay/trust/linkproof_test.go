package trust

import (
	"errors"
	"testing"
	"time"
)

// TestLinkProof: a proof checks for what it says and nothing else: the
// signer's own key, its end, the time it was made for.
func TestLinkProof(t *testing.T) {
	net := newTestNet(t, "test")
	alpha, beta, mallory := net.node(t, "alpha"), net.node(t, "beta"), net.node(t, "mallory")
	now := time.Now()
	clock := func() time.Time { return now }
	dir := NewDirectory(net.ca.Cert, "test", 0, clock)
	proof, err := NewSigner(alpha, clock).ProveLink(beta.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(proof) != ProofLen {
		t.Fatalf("proof of %d bytes", len(proof))
	}
	if _, err := dir.CheckLinkProof(proof); !errors.Is(err, ErrUnknownOrigin) {
		t.Fatalf("signer unknown: %v", err)
	}
	dir.Add(&alpha.Peer)
	dir.Add(&mallory.Peer)
	lp, err := dir.CheckLinkProof(proof)
	if err != nil || lp.Signer != alpha.ID || lp.Peer != beta.ID || !lp.Until.After(now) {
		t.Fatalf("CheckLinkProof = %+v, %v", lp, err)
	}
	// Mallory's own proof relabelled as alpha's, or alpha's for another
	// peer: the signature fails.
	forged, _ := NewSigner(mallory, clock).ProveLink(beta.ID)
	copy(forged[1:33], alpha.ID[:])
	if _, err := dir.CheckLinkProof(forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("relabelled proof: %v", err)
	}
	other := append([]byte(nil), proof...)
	copy(other[33:65], mallory.ID[:])
	if _, err := dir.CheckLinkProof(other); !errors.Is(err, ErrBadSignature) {
		t.Errorf("proof for another peer: %v", err)
	}
	// Over, or made far ahead: refused.
	now = now.Add(ProofFor + time.Second)
	if _, err := dir.CheckLinkProof(proof); !errors.Is(err, ErrReplay) {
		t.Errorf("expired proof: %v", err)
	}
	ahead, _ := NewSigner(alpha, func() time.Time { return now.Add(time.Hour) }).ProveLink(beta.ID)
	if _, err := dir.CheckLinkProof(ahead); !errors.Is(err, ErrReplay) {
		t.Errorf("proof from the future: %v", err)
	}
	if _, err := dir.CheckLinkProof(proof[:ProofLen-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short proof: %v", err)
	}
}

func FuzzCheckLinkProof(f *testing.F) {
	net := newTestNet(f, "test")
	alpha, beta := net.node(f, "alpha"), net.node(f, "beta")
	dir := NewDirectory(net.ca.Cert, "test", 0, nil)
	dir.Add(&alpha.Peer)
	proof, _ := NewSigner(alpha, nil).ProveLink(beta.ID)
	f.Add(proof)
	f.Fuzz(func(t *testing.T, b []byte) {
		lp, err := dir.CheckLinkProof(b)
		if err == nil && (lp.Signer != alpha.ID || len(b) != ProofLen) {
			t.Fatalf("accepted %+v", lp)
		}
	})
}
