package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Issue creates a key pair and a certificate for node name, allowed to use
// addresses inside prefixes, valid from now for validFor (but never past the
// CA's own expiry, after which the chain would fail anyway). It returns the
// certificate and PKCS #8 key as PEM.
func (ca *CA) Issue(name string, prefixes []netip.Prefix, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.IssueRole(name, prefixes, "", validFor)
}

// IssueRole is Issue for a certificate with a role (RoleRendezvous), or
// none ("").
func (ca *CA) IssueRole(name string, prefixes []netip.Prefix, role string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	cert, key, err := ca.issueNow(name, prefixes, role, validFor)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(cert.Raw), keyPEM, nil
}

// issueNow issues a certificate valid from now (backdated) for validFor.
func (ca *CA) issueNow(name string, prefixes []netip.Prefix, role string, validFor time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("identity: certificate validity %v must be positive", validFor)
	}
	now := time.Now()
	return ca.issueRole(name, prefixes, role, now.Add(-backdate), now.Add(validFor))
}

// issue is Issue with an explicit validity window, so tests can make
// certificates that are expired or not yet valid.
func (ca *CA) issue(name string, prefixes []netip.Prefix, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return ca.issueRole(name, prefixes, "", notBefore, notAfter)
}

func (ca *CA) issueRole(name string, prefixes []netip.Prefix, role string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, nil, errors.New("identity: issuing needs the CA certificate and key")
	}
	if err := checkName("node", name); err != nil {
		return nil, nil, err
	}
	notAfter = minTime(notAfter, ca.Cert.NotAfter)
	if !notAfter.After(notBefore) {
		return nil, nil, fmt.Errorf("identity: certificate for %s would expire before it is valid (the CA expires on %s)",
			name, ca.Cert.NotAfter.UTC().Format(timeLayout))
	}
	allowed, err := normalizePrefixes(prefixes)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: certificate for %s: %w", name, err)
	}
	ext, err := marshalPrefixesExt(allowed)
	if err != nil {
		return nil, nil, err
	}
	exts := []pkix.Extension{ext}
	switch role {
	case "":
	case RoleRendezvous:
		rext, err := marshalRoleExt(role)
		if err != nil {
			return nil, nil, err
		}
		exts = append(exts, rext)
	default:
		return nil, nil, fmt.Errorf("identity: unknown role %q; the one role is %q", role, RoleRendezvous)
	}
	ips := make([]net.IP, 0, len(allowed))
	for _, p := range allowed {
		ips = append(ips, net.IP(p.Addr().AsSlice()))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{ca.Network}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{name},
		IPAddresses:           ips,
		ExtraExtensions:       exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// IssueToDir loads the CA from caDir, issues a certificate for name and
// writes outDir/<name>.crt (0644) and outDir/<name>.key (0600), creating
// outDir (0700) if needed. It refuses with ErrExists if either file exists.
func IssueToDir(caDir, name string, prefixes []netip.Prefix, validFor time.Duration, outDir string) (certFile, keyFile string, id nodeid.ID, err error) {
	return IssueToDirRole(caDir, name, prefixes, "", validFor, outDir)
}

// IssueToDirRole is IssueToDir for a certificate with a role.
func IssueToDirRole(caDir, name string, prefixes []netip.Prefix, role string, validFor time.Duration, outDir string) (certFile, keyFile string, id nodeid.ID, err error) {
	if err := checkName("node", name); err != nil {
		return "", "", nodeid.ID{}, err
	}
	ca, err := LoadCA(caDir)
	if err != nil {
		return "", "", nodeid.ID{}, err
	}
	certFile, keyFile = filepath.Join(outDir, name+".crt"), filepath.Join(outDir, name+".key")
	// Fail before generating anything when the files are already there.
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Lstat(f); err == nil {
			return "", "", nodeid.ID{}, errorf(ErrExists, "refusing to overwrite %s: file exists", f)
		}
	}
	cert, key, err := ca.issueNow(name, prefixes, role, validFor)
	if err != nil {
		return "", "", nodeid.ID{}, err
	}
	if id, err = IDOf(cert.PublicKey); err != nil {
		return "", "", nodeid.ID{}, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return "", "", nodeid.ID{}, err
	}
	if err := os.MkdirAll(outDir, dirMode); err != nil {
		return "", "", nodeid.ID{}, err
	}
	err = writeNew(outFile{keyFile, keyPEM, keyMode}, outFile{certFile, encodeCert(cert.Raw), certMode})
	if err != nil {
		return "", "", nodeid.ID{}, err
	}
	return certFile, keyFile, id, nil
}

// normalizePrefixes masks and de-duplicates prefixes, keeping their order,
// and rejects ones that could never match (see checkPrefix).
func normalizePrefixes(prefixes []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(prefixes))
	seen := make(map[netip.Prefix]bool, len(prefixes))
	for _, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid prefix %v", p)
		}
		p = p.Masked()
		if err := checkPrefix(p); err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) > maxPrefixes {
		return nil, fmt.Errorf("%d prefixes, limit is %d", len(out), maxPrefixes)
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
