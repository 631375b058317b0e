package wire

import "errors"

// Sentinels. Open and Seal return them unwrapped, so the hot path allocates
// nothing; callers branch with errors.Is and count them. None is fatal to a
// link: a bad packet is dropped and the next one is judged on its own.
var (
	// ErrShort: the packet is too short to hold a header and a tag.
	ErrShort = errors.New("wire: packet too short")
	// ErrType: the first byte is not TypeData (the demultiplexer sent the
	// wrong packet here), or an authentic packet carries flags this version
	// does not understand.
	ErrType = errors.New("wire: not a data packet of this version")
	// ErrAuth: the packet did not authenticate under the peer's key: forged,
	// corrupted, sealed for the other direction, or from an older session.
	ErrAuth = errors.New("wire: packet failed authentication")
	// ErrReplay: the packet is authentic but its counter was already
	// accepted or lies behind the replay window.
	ErrReplay = errors.New("wire: replayed or too old packet")
	// ErrKeyExhausted: the send counter reached CounterLimit; the link needs
	// a new handshake before it can send again.
	ErrKeyExhausted = errors.New("wire: send key exhausted, rekey needed")
	// ErrKeyMaterial: NewSession got keying material of the wrong length or
	// with the same key for both directions.
	ErrKeyMaterial = errors.New("wire: bad exported keying material")
)
