package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

type testNet struct {
	ca  *identity.CA
	dir string
}

func newTestNet(t testing.TB, network string) *testNet {
	ca, err := identity.NewCA(network, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testNet{ca: ca, dir: t.TempDir()}
}

func (n *testNet) node(t testing.TB, name string) *identity.Identity {
	crt, key, err := n.ca.Issue(name, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(n.dir, name+".crt"), filepath.Join(n.dir, name+".key")
	os.WriteFile(cf, crt, 0o644)
	os.WriteFile(kf, key, 0o600)
	id, err := identity.LoadNode(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEnvelope(t *testing.T) {
	net := newTestNet(t, "test")
	alpha, beta, mallory := net.node(t, "alpha"), net.node(t, "beta"), net.node(t, "mallory")
	dir := NewDirectory(net.ca.Cert, "test", 0, nil)
	sa, sm := NewSigner(alpha, nil), NewSigner(mallory, nil)
	msg := []byte{1, 'h', 'i'}

	// Unknown origin, no certificate: refused; with it: learned and opened.
	env, _ := sa.Seal(beta.ID, msg, false)
	if _, _, err := dir.Open(alpha.ID, beta.ID, env); !errors.Is(err, ErrUnknownOrigin) {
		t.Fatalf("unknown origin: %v", err)
	}
	env, _ = sa.Seal(beta.ID, msg, true)
	got, e, err := dir.Open(alpha.ID, beta.ID, env)
	if err != nil || !bytes.Equal(got, msg) || e.Peer.Name != "alpha" {
		t.Fatalf("Open = %q, %v, %v", got, e, err)
	}
	// Replayed: refused. A later one without the certificate: fine now.
	if _, _, err := dir.Open(alpha.ID, beta.ID, env); !errors.Is(err, ErrReplay) {
		t.Errorf("replay: %v", err)
	}
	env2, _ := sa.Seal(beta.ID, msg, false)
	if _, _, err := dir.Open(alpha.ID, beta.ID, env2); err != nil {
		t.Errorf("second message: %v", err)
	}

	// Mallory speaks for alpha: a message signed by mallory, claimed to
	// come from alpha (with or without mallory's certificate), fails.
	forged, _ := sm.Seal(beta.ID, msg, true)
	if _, _, err := dir.Open(alpha.ID, beta.ID, forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged origin: %v", err)
	}
	// A unicast alpha signed for beta, replayed to a third node or as a
	// broadcast: the signature does not cover that destination.
	toBeta, _ := sa.Seal(beta.ID, msg, false)
	if _, _, err := dir.Open(alpha.ID, mallory.ID, toBeta); !errors.Is(err, ErrBadSignature) {
		t.Errorf("replayed to another node: %v", err)
	}
	if _, _, err := dir.Open(alpha.ID, nodeid.ID{}, toBeta); !errors.Is(err, ErrBadSignature) {
		t.Errorf("replayed as a broadcast: %v", err)
	}
	// A broadcast opens as one.
	bcast, _ := sa.Seal(nodeid.ID{}, msg, false)
	if _, _, err := dir.Open(alpha.ID, nodeid.ID{}, bcast); err != nil {
		t.Errorf("broadcast: %v", err)
	}
	// Flipped bits anywhere: refused.
	for i := range bcast {
		b := bytes.Clone(bcast)
		b[i] ^= 0x40
		if _, _, err := dir.Open(alpha.ID, nodeid.ID{}, b); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	// A certificate of another network is refused; so is mallory's cert in
	// a message claimed to come from alpha when alpha is unknown.
	other := newTestNet(t, "other").node(t, "alpha")
	env, _ = NewSigner(other, nil).Seal(beta.ID, msg, true)
	if _, _, err := NewDirectory(net.ca.Cert, "test", 0, nil).Open(other.ID, beta.ID, env); !errors.Is(err, ErrCert) {
		t.Errorf("foreign certificate: %v", err)
	}
	fresh := NewDirectory(net.ca.Cert, "test", 0, nil)
	if _, _, err := fresh.Open(alpha.ID, beta.ID, forged); !errors.Is(err, ErrCert) {
		t.Errorf("another node's certificate: %v", err)
	}
}

func TestEnvelopeRunsAndFreshness(t *testing.T) {
	net := newTestNet(t, "test")
	alpha, beta := net.node(t, "alpha"), net.node(t, "beta")
	clock := time.Now()
	now := func() time.Time { return clock }
	dir := NewDirectory(net.ca.Cert, "test", 0, now)
	run1 := NewSigner(alpha, now)
	old, _ := run1.Seal(beta.ID, []byte{1}, true)
	if _, _, err := dir.Open(alpha.ID, beta.ID, old); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Second)
	run2 := NewSigner(alpha, now) // alpha restarted
	m, _ := run2.Seal(beta.ID, []byte{2}, false)
	if _, _, err := dir.Open(alpha.ID, beta.ID, m); err != nil {
		t.Fatalf("new run refused: %v", err)
	}
	// A message of the old run, never seen, is still refused: older.
	late, _ := run1.Seal(beta.ID, []byte{3}, false)
	clock = clock.Add(time.Second)
	if _, _, err := dir.Open(alpha.ID, beta.ID, late); !errors.Is(err, ErrReplay) {
		t.Errorf("old run: %v", err)
	}
	clock = clock.Add(Freshness + time.Minute)
	stale, _ := func() ([]byte, error) {
		c := clock
		clock = clock.Add(-2 * Freshness)
		defer func() { clock = c }()
		return run2.Seal(beta.ID, []byte{4}, false)
	}()
	if _, _, err := dir.Open(alpha.ID, beta.ID, stale); !errors.Is(err, ErrReplay) {
		t.Errorf("stale: %v", err)
	}
}

func TestDirectoryBoundedAndRevoked(t *testing.T) {
	net := newTestNet(t, "test")
	dir := NewDirectory(net.ca.Cert, "test", 3, nil)
	var ids []*identity.Identity
	for _, name := range []string{"a", "b", "c", "d"} {
		id := net.node(t, name)
		ids = append(ids, id)
		if _, err := dir.Learn(id.Cert.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if dir.Len() != 3 || dir.Get(ids[0].ID) != nil || dir.Stats().Evicted.Load() != 1 {
		t.Errorf("len %d, a known %v, evicted %d", dir.Len(), dir.Get(ids[0].ID) != nil, dir.Stats().Evicted.Load())
	}
	dir.Revoke(ids[3].ID)
	if dir.Get(ids[3].ID) != nil {
		t.Error("revoked node still known")
	}
	if _, err := dir.Learn(ids[3].Cert.Raw); !errors.Is(err, ErrCert) {
		t.Errorf("revoked certificate learned: %v", err)
	}
}

func BenchmarkSeal(b *testing.B) {
	net := newTestNet(b, "test")
	s := NewSigner(net.node(b, "alpha"), nil)
	msg := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(nodeid.ID{}, msg, false)
	}
}

func BenchmarkOpen(b *testing.B) {
	net := newTestNet(b, "test")
	alpha := net.node(b, "alpha")
	s := NewSigner(alpha, nil)
	dir := NewDirectory(net.ca.Cert, "test", 0, nil)
	first, _ := s.Seal(nodeid.ID{}, []byte{1}, true)
	dir.Open(alpha.ID, nodeid.ID{}, first)
	envs := make([][]byte, b.N)
	for i := range envs {
		envs[i], _ = s.Seal(nodeid.ID{}, make([]byte, 200), false)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := dir.Open(alpha.ID, nodeid.ID{}, envs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEnvelopeStream: messages opened as a stream (OpenStream: tree
// frames) have a replay window of their own: thousands of them do not
// make a late control message a "replay"; a stream message comes once.
func TestEnvelopeStream(t *testing.T) {
	net := newTestNet(t, "test")
	alpha, beta := net.node(t, "alpha"), net.node(t, "beta")
	dir := NewDirectory(net.ca.Cert, "test", 0, nil)
	sa := NewSigner(alpha, nil)
	stream := nodeid.ID{0xee}
	first, _ := sa.Seal(beta.ID, []byte{1}, true)
	if _, _, err := dir.Open(alpha.ID, beta.ID, first); err != nil {
		t.Fatal(err)
	}
	late, _ := sa.Seal(beta.ID, []byte{2}, false) // delayed behind the stream
	var last []byte
	for range 5000 {
		env, _ := sa.Seal(stream, []byte{3}, false)
		if _, _, err := dir.OpenStream(alpha.ID, stream, env); err != nil {
			t.Fatalf("stream message: %v", err)
		}
		last = env
	}
	if _, _, err := dir.Open(alpha.ID, beta.ID, late); err != nil {
		t.Errorf("a control message behind 5,000 stream messages: %v", err)
	}
	if _, _, err := dir.OpenStream(alpha.ID, stream, last); !errors.Is(err, ErrReplay) {
		t.Errorf("a stream message again: %v", err)
	}
}
