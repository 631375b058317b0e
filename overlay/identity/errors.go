package identity

import (
	"errors"
	"fmt"
)

// Sentinels. Every verification error wraps exactly one of these, so callers
// branch with errors.Is and show Error() to people unchanged.
var (
	// ErrWrongCA: the certificate is not signed by the network CA.
	ErrWrongCA = errors.New("identity: certificate not issued by the network CA")
	// ErrExpired: now is after the NotAfter of the certificate or of the CA.
	ErrExpired = errors.New("identity: certificate expired")
	// ErrNotYetValid: now is before the NotBefore of the certificate or CA.
	ErrNotYetValid = errors.New("identity: certificate not yet valid")
	// ErrWrongNetwork: the certificate belongs to another network.
	ErrWrongNetwork = errors.New("identity: certificate is for another network")
	// ErrAddressNotAllowed: a configured address lies outside the
	// certificate's allowed prefixes.
	ErrAddressNotAllowed = errors.New("identity: address not allowed by certificate")
	// ErrBadCert: unparsable input, a malformed ipopd field, a key that does
	// not match its certificate, or a certificate of the wrong kind.
	ErrBadCert = errors.New("identity: bad certificate")
	// ErrExists: a file we would write already exists; keys and certificates
	// are never overwritten.
	ErrExists = errors.New("identity: file exists")
)

// idError carries a full human sentence while still matching its sentinel
// (and, when there is one, the underlying cause) under errors.Is/As. Wrapping
// with fmt.Errorf("...: %w", ErrX) would append the sentinel's text to
// messages that are already complete.
type idError struct {
	kind error // one of the sentinels above
	err  error // the sentence, possibly wrapping a cause
}

func (e *idError) Error() string   { return e.err.Error() }
func (e *idError) Unwrap() []error { return []error{e.kind, e.err} }

// errorf formats like fmt.Errorf (including %w) and tags the result with kind.
func errorf(kind error, format string, args ...any) error {
	return &idError{kind: kind, err: fmt.Errorf(format, args...)}
}
