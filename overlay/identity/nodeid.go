package identity

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
)

// NodeID names a node on the overlay: SHA-256 of its public key encoded as a
// DER SubjectPublicKeyInfo. Being a hash of the key, it is bound to whoever
// can complete a handshake with that key.
type NodeID [32]byte

// String returns the full ID as 64 lowercase hex digits.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for logs and peer names. It is for
// people only; never use it as a key.
func (id NodeID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero value (no node).
func (id NodeID) IsZero() bool { return id == NodeID{} }

// MarshalText encodes the ID as String does, so IDs read naturally in JSON
// and config files.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText is the inverse of MarshalText; see ParseNodeID.
func (id *NodeID) UnmarshalText(b []byte) error {
	v, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseNodeID parses the 64 hex digits String produces (either case).
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if len(s) != 2*len(id) {
		return NodeID{}, errorf(ErrBadNodeID, "node ID %q: want %d hex digits, got %d characters", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return NodeID{}, errorf(ErrBadNodeID, "node ID %q: %w", s, err)
	}
	return id, nil
}

// IDOf derives the NodeID of a public key. Hashing the canonical encoding
// rather than the bytes found in a certificate makes the ID a function of the
// key alone; for certificates made by this package the two are identical.
func IDOf(pub crypto.PublicKey) (NodeID, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return NodeID{}, errorf(ErrBadCert, "node ID of %T key: %w", pub, err)
	}
	return sha256.Sum256(der), nil
}

// Less orders node IDs (the ring order, and who initiates a link).
func (id NodeID) Less(o NodeID) bool { return bytes.Compare(id[:], o[:]) < 0 }
