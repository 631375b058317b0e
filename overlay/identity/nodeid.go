package identity

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// IDOf derives the node ID of a public key: SHA-256 of its DER
// SubjectPublicKeyInfo. Hashing the canonical encoding rather than the
// bytes found in a certificate makes the ID a function of the key alone;
// for certificates made by this package the two are identical.
func IDOf(pub crypto.PublicKey) (nodeid.ID, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nodeid.ID{}, errorf(ErrBadCert, "node ID of %T key: %w", pub, err)
	}
	return sha256.Sum256(der), nil
}
