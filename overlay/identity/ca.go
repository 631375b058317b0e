package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// File names inside a CA directory.
const (
	caCertName = "ca.crt"
	caKeyName  = "ca.key"
)

// backdate is subtracted from every NotBefore so a certificate issued on one
// machine is already valid on a peer whose clock runs a little behind.
const backdate = 5 * time.Minute

// CA is a network's certificate authority. Key is nil on nodes, which only
// ever hold the public certificate (see LoadCACert).
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	Network string
}

// NewCA creates a CA for network in memory, valid from now for validFor.
func NewCA(network string, validFor time.Duration) (*CA, error) {
	return newCA(network, time.Now(), validFor)
}

func newCA(network string, now time.Time, validFor time.Duration) (*CA, error) {
	if err := checkName("network", network); err != nil {
		return nil, err
	}
	if validFor <= 0 {
		return nil, fmt.Errorf("identity: CA validity %v must be positive", validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ipopd CA " + network, Organization: []string{network}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		// Path length 0: the CA signs node certificates directly and never
		// an intermediate, so a leaked node key cannot mint certificates.
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Network: network}, nil
}

// InitCA creates a CA and writes outDir/ca.crt (0644) and outDir/ca.key
// (0600), creating outDir (0700) if it is missing. It refuses with ErrExists
// if either file already exists and then writes neither.
func InitCA(network, outDir string, validFor time.Duration) (*CA, error) {
	ca, err := NewCA(network, validFor)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, dirMode); err != nil {
		return nil, err
	}
	err = writeNew(
		outFile{filepath.Join(outDir, caKeyName), keyPEM, keyMode},
		outFile{filepath.Join(outDir, caCertName), encodeCert(ca.Cert.Raw), certMode},
	)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads ca.crt and ca.key from dir, the state ipopctl needs to issue.
func LoadCA(dir string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, caCertName), filepath.Join(dir, caKeyName)
	cert, err := LoadCACert(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, cert) {
		return nil, errorf(ErrBadCert, "key %s does not match CA certificate %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, Network: cert.Subject.Organization[0]}, nil
}

// LoadCACert reads the public CA certificate a node is configured with.
func LoadCACert(file string) (*x509.Certificate, error) {
	cert, err := readCertFile(file)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errorf(ErrBadCert, "%s is not a CA certificate", file)
	}
	if len(cert.Subject.Organization) != 1 {
		return nil, errorf(ErrBadCert, "%s names no network (Subject Organization)", file)
	}
	return cert, nil
}

// newSerial returns a random positive 127-bit serial number; RFC 5280 allows
// up to 20 octets, and randomness keeps serials unique without CA state.
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// checkName validates node and network names. They become a file name
// (<name>.crt), a DNS SAN and part of log lines, so they are kept to a
// hostname-like alphabet: letters, digits, '-' and '.', starting with a
// letter or digit, at most 63 bytes.
func checkName(what, s string) error {
	if !nodeid.ValidName(s) {
		return fmt.Errorf("identity: %s name %q is not a valid name; allowed: %s", what, s, nodeid.NameRule)
	}
	return nil
}
