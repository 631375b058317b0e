package trust

import (
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// FuzzOpen feeds arbitrary envelopes, claimed to come from a known node
// or an unknown one, to Open: nothing panics, and nothing opens that the
// known node did not sign (the fuzzer cannot forge ECDSA; what it finds
// valid is a seed, which may open once, never twice).
func FuzzOpen(f *testing.F) {
	net := newTestNet(f, "test")
	alpha, beta := net.node(f, "alpha"), net.node(f, "beta")
	s := NewSigner(alpha, nil)
	for _, withCert := range []bool{false, true} {
		env, _ := s.Seal(beta.ID, []byte{1, 2, 3}, withCert)
		f.Add(env, false)
		env, _ = s.Seal(nodeid.ID{}, []byte{16}, withCert)
		f.Add(env, true)
	}
	f.Add([]byte{envVersion, envFlagCert, 0, 0}, false)
	dir := NewDirectory(net.ca.Cert, "test", 0, nil)
	dir.Learn(alpha.Cert.Raw)
	f.Fuzz(func(t *testing.T, env []byte, broadcast bool) {
		dst := beta.ID
		if broadcast {
			dst = nodeid.ID{}
		}
		msg, _, err := dir.Open(alpha.ID, dst, env)
		if err == nil {
			if len(msg) == 0 {
				t.Fatal("opened an empty message")
			}
			if _, _, err := dir.Open(alpha.ID, dst, env); err == nil {
				t.Fatal("the same envelope opened twice")
			}
		}
		dir.Open(nodeid.ID{9}, dst, env) // an unknown origin
	})
}
