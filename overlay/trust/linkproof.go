package trust

// Link proofs: a node's signed word that it has a link to another node,
// until a time. The ring believes a peer's claim of a link (which makes
// the peer a way toward that node for routed traffic and relays) only
// with a proof signed by the other end, so a member cannot attract
// traffic by claiming links it does not have.
//
//	 0  version   1  proofVersion (0x01)
//	 1  signer   32  the node that signs (one end of the link)
//	33  peer     32  the node it is linked to, which shows the proof
//	65  until     8  unix seconds: the proof's end
//	73  sig      64  ECDSA P-256 r || s over proofContext || bytes 0..72
//
// The signer sends one to each linked peer every ProofEvery, valid for
// ProofFor: a link that went down keeps its proof at most that long.

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

const (
	proofVersion = 0x01
	proofContext = "ipopd link proof v1\x00"
	// ProofLen is the length of an encoded link proof.
	ProofLen = 1 + 32 + 32 + 8 + 64
	// ProofEvery is how often a node renews its proofs to its peers,
	// and ProofFor how long each is valid.
	ProofEvery = time.Minute
	ProofFor   = 3 * time.Minute
)

// LinkProof is a decoded, verified link proof.
type LinkProof struct {
	Signer, Peer nodeid.ID
	Until        time.Time
}

func proofDigest(b []byte) []byte {
	h := sha256.New()
	h.Write([]byte(proofContext))
	h.Write(b)
	return h.Sum(nil)
}

// ProveLink returns this node's proof that it is linked to peer, valid
// for ProofFor.
func (s *Signer) ProveLink(peer nodeid.ID) ([]byte, error) {
	key, ok := s.key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("trust: link proofs need an ECDSA key, have %T", s.key)
	}
	b := make([]byte, 0, ProofLen)
	b = append(b, proofVersion)
	b = append(b, s.self[:]...)
	b = append(b, peer[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.now().Add(ProofFor).Unix()))
	r, sv, err := ecdsa.Sign(rand.Reader, key, proofDigest(b))
	if err != nil {
		return nil, fmt.Errorf("trust: signing a link proof: %w", err)
	}
	var rs [64]byte
	r.FillBytes(rs[:32])
	sv.FillBytes(rs[32:])
	return append(b, rs[:]...), nil
}

// CheckLinkProof verifies a link proof: well-formed, signed with the key
// of its signer (whose certificate the directory must hold:
// ErrUnknownOrigin otherwise), not over, and not running further ahead
// than a proof is made for (clocks within a minute). Errors wrap
// ErrMalformed, ErrUnknownOrigin, ErrBadSignature or ErrReplay (over).
func (d *Directory) CheckLinkProof(b []byte) (LinkProof, error) {
	var lp LinkProof
	if len(b) != ProofLen || b[0] != proofVersion {
		return lp, fmt.Errorf("%w: link proof of %d bytes", ErrMalformed, len(b))
	}
	lp.Signer, lp.Peer = nodeid.ID(b[1:33]), nodeid.ID(b[33:65])
	lp.Until = time.Unix(int64(binary.BigEndian.Uint64(b[65:73])), 0)
	now := d.now()
	if !lp.Until.After(now) || lp.Until.After(now.Add(ProofFor+time.Minute)) {
		return LinkProof{}, fmt.Errorf("%w: link proof of %s until %s", ErrReplay, lp.Signer.Short(), lp.Until.UTC().Format(time.RFC3339))
	}
	e := d.Get(lp.Signer)
	if e == nil {
		return LinkProof{}, fmt.Errorf("%w: %s", ErrUnknownOrigin, lp.Signer.Short())
	}
	r, sv := new(big.Int).SetBytes(b[73:105]), new(big.Int).SetBytes(b[105:137])
	if !ecdsa.Verify(e.pub, proofDigest(b[:73]), r, sv) {
		return LinkProof{}, fmt.Errorf("%w: link proof of %s", ErrBadSignature, e.Peer)
	}
	return lp, nil
}
