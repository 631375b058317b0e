package trust

import "errors"

// Sentinels; errors wrap exactly one of them.
var (
	// ErrMalformed: bytes that are not an envelope of this version.
	ErrMalformed = errors.New("trust: malformed envelope")
	// ErrUnknownOrigin: the origin's certificate is neither known nor in
	// the envelope.
	ErrUnknownOrigin = errors.New("trust: unknown origin")
	// ErrBadSignature: the signature does not verify with the origin's key.
	ErrBadSignature = errors.New("trust: bad signature")
	// ErrReplay: a counter already seen, from an older run of the origin,
	// or a timestamp outside the freshness window.
	ErrReplay = errors.New("trust: replayed or stale message")
	// ErrCert: a certificate that does not verify (wrong CA, expired,
	// other network, revoked, or for another node than it claims).
	ErrCert = errors.New("trust: certificate refused")
)
