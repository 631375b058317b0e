package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// timeLayout is how validity dates appear in errors: minute precision is
// what a person fixing a clock or renewing a certificate needs.
const timeLayout = "2006-01-02 15:04 UTC"

// Peer is what a verified certificate says about a node. ID is derived from
// the certificate's key, never read from a field.
type Peer struct {
	ID       nodeid.ID
	Name     string
	Network  string
	Prefixes []netip.Prefix
	NotAfter time.Time
	// Role is RoleRendezvous for a rendezvous server's certificate, ""
	// for a node's.
	Role string
	Cert *x509.Certificate
}

// String returns the short form used in logs, e.g. "peer(alpha/3fa9c1d2)".
func (p *Peer) String() string {
	if p == nil {
		return "peer(<nil>)"
	}
	return "peer(" + p.Name + "/" + p.ID.Short() + ")"
}

// Allows reports whether addr lies inside one of the peer's prefixes. An
// IPv4-mapped IPv6 address counts as its IPv4 form, and a zone is ignored.
func (p *Peer) Allows(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, pfx := range p.Prefixes {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// Verify checks that cert was signed by ca, is valid at now (as is ca), is a
// node certificate for network, and carries well-formed ipopd fields. Chain
// building is x509's, with ExtKeyUsageAny: both usages are set on issue, and
// what a node may do is decided by this package, not by key usages.
//
// The error wraps ErrWrongCA, ErrExpired, ErrNotYetValid, ErrWrongNetwork or
// ErrBadCert and reads as one sentence naming the certificate by its CN.
func Verify(cert *x509.Certificate, ca *x509.Certificate, network string, now time.Time) (*Peer, error) {
	if cert == nil || ca == nil {
		return nil, errorf(ErrBadCert, "no certificate to verify")
	}
	return verify(cert, ca, network, now, labels{
		cert: fmt.Sprintf("certificate %q", cert.Subject.CommonName),
		ca:   fmt.Sprintf("the CA %q", ca.Subject.CommonName),
	})
}

// VerifyRaw is Verify for tls.Config/dtls.Config VerifyPeerCertificate:
// rawCerts[0] is the peer's DER certificate; any others are ignored, since
// the CA signs node certificates directly. Any input yields an error, not a
// panic.
func VerifyRaw(rawCerts [][]byte, ca *x509.Certificate, network string, now time.Time) (*Peer, error) {
	if len(rawCerts) == 0 {
		return nil, errorf(ErrBadCert, "peer presented no certificate")
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, errorf(ErrBadCert, "peer certificate: %w", err)
	}
	return Verify(cert, ca, network, now)
}

// labels name the certificates in error messages: by CN for peers, by file
// for the local node's start-up check.
type labels struct {
	cert string // e.g. `certificate "alpha"` or "certificate alpha.crt"
	ca   string // e.g. `the CA "ipopd CA demo"` or "the CA in ca.crt"
}

// verify runs the checks in the order a person should fix them: the wrong CA
// makes everything else moot, then dates, then the network.
func verify(cert, ca *x509.Certificate, network string, now time.Time, l labels) (*Peer, error) {
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, errorf(ErrWrongCA, "%s was not issued by %s (wrong CA)", l.cert, l.ca)
	}
	for _, c := range []struct {
		cert  *x509.Certificate
		label string
	}{{ca, l.ca}, {cert, l.cert}} {
		if now.Before(c.cert.NotBefore) {
			return nil, errorf(ErrNotYetValid, "%s is not valid until %s", c.label, c.cert.NotBefore.UTC().Format(timeLayout))
		}
		if now.After(c.cert.NotAfter) {
			return nil, errorf(ErrExpired, "%s expired on %s", c.label, c.cert.NotAfter.UTC().Format(timeLayout))
		}
	}
	if cert.IsCA {
		return nil, errorf(ErrBadCert, "%s is a CA certificate, not a node certificate", l.cert)
	}
	if org := cert.Subject.Organization; len(org) != 1 || org[0] != network {
		return nil, errorf(ErrWrongNetwork, "%s is for network %q, config network is %q", l.cert, orgName(org), network)
	}
	if err := checkName("node", cert.Subject.CommonName); err != nil {
		return nil, errorf(ErrBadCert, "%s: %w", l.cert, err)
	}
	// The checks above give the precise message; x509 then does the complete
	// job (issuer name, CA constraints, critical extensions, key usages).
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		return nil, errorf(ErrWrongCA, "%s was not issued by %s (wrong CA): %w", l.cert, l.ca, err)
	case err != nil:
		return nil, errorf(ErrBadCert, "%s: %w", l.cert, err)
	}
	return peerOf(cert, l)
}

// peerOf reads the ipopd fields of an already verified certificate.
func peerOf(cert *x509.Certificate, l labels) (*Peer, error) {
	id, err := IDOf(cert.PublicKey)
	if err != nil {
		return nil, errorf(ErrBadCert, "%s: %w", l.cert, err)
	}
	prefixes, err := certPrefixes(cert)
	if err != nil {
		return nil, errorf(ErrBadCert, "%s: %w", l.cert, err)
	}
	role, err := certRole(cert)
	if err != nil {
		return nil, errorf(ErrBadCert, "%s: %w", l.cert, err)
	}
	return &Peer{
		ID:       id,
		Name:     cert.Subject.CommonName,
		Network:  orgName(cert.Subject.Organization),
		Prefixes: prefixes,
		NotAfter: cert.NotAfter,
		Role:     role,
		Cert:     cert,
	}, nil
}

// orgName is the network a certificate names; "" if it names none or several.
func orgName(org []string) string {
	if len(org) != 1 {
		return ""
	}
	return org[0]
}
