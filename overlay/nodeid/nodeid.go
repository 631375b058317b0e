// Package nodeid is the one name of an overlay node that every package
// uses: the ring, routing and multicast tables (topology), the neighbour
// table (arp), certificates (identity), links and the data plane. It
// imports nothing of ipopd, so pure-logic packages may use it too.
package nodeid

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID names a node: SHA-256 of its public key encoded as a DER
// SubjectPublicKeyInfo (identity.IDOf). Being a hash of the key, it is
// bound to whoever can complete a handshake with that key. IDs are ordered
// as big-endian 256-bit numbers: the ring's order.
type ID [32]byte

// ErrBad: the text is not a node ID (64 hex digits).
var ErrBad = errors.New("nodeid: bad node ID")

// String returns the full ID as 64 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for logs and peer names. It is for
// people only; never use it as a key.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero value (no node).
func (id ID) IsZero() bool { return id == ID{} }

// Compare orders IDs as big-endian numbers: -1, 0 or +1.
func (id ID) Compare(o ID) int { return bytes.Compare(id[:], o[:]) }

// Less reports whether id comes before o (the ring order, and who
// initiates a link).
func (id ID) Less(o ID) bool { return id.Compare(o) < 0 }

// MarshalText encodes the ID as String does, so IDs read naturally in JSON
// and config files.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText is the inverse of MarshalText; see Parse.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Parse parses the 64 hex digits String produces (either case). Errors
// wrap ErrBad.
func Parse(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("%w: %q: want %d hex digits, got %d characters", ErrBad, s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: %q: %v", ErrBad, s, err)
	}
	return id, nil
}
