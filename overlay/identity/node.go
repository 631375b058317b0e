package identity

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Identity is the local node: its certificate's content, its private key, and
// both packaged for crypto/tls and pion/dtls.
type Identity struct {
	Peer
	Key crypto.Signer
	// TLS holds the certificate alone, without the CA: every peer already
	// has the CA, and the CA signs node certificates directly.
	TLS tls.Certificate
}

// LoadNode reads a node certificate and its private key (PEM; PKCS #8 or
// SEC 1) and checks that the key belongs to the certificate. It does not
// check the certificate against a CA; CheckNode does that.
func LoadNode(certFile, keyFile string) (*Identity, error) {
	cert, err := readCertFile(certFile)
	if err != nil {
		return nil, err
	}
	key, err := readKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, cert) {
		return nil, errorf(ErrBadCert, "key %s does not match certificate %s (the key belongs to another certificate)", keyFile, certFile)
	}
	peer, err := peerOf(cert, labels{cert: "certificate " + certFile})
	if err != nil {
		return nil, err
	}
	return &Identity{
		Peer: *peer,
		Key:  key,
		TLS:  tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
	}, nil
}

// CheckNode is the start-up check of ipopd: that id's certificate (read from
// certFile) was issued by ca (read from caFile), is valid at now, is for
// network, and allows every configured address. addrs maps a config key such
// as "tap.address" to its value; unset (zero) values are skipped. File names
// appear in the error as given.
//
// It returns the first problem only, as one sentence, checking in the order
// a person should fix them (CA, dates, network, addresses):
//
//	certificate alpha.crt was not issued by the CA in ca.crt (wrong CA)
//	certificate alpha.crt expired on 2026-01-02 15:04 UTC
//	certificate alpha.crt is not valid until 2026-01-02 15:04 UTC
//	the CA in ca.crt expired on 2026-01-02 15:04 UTC
//	certificate alpha.crt is for network "other", config network is "demo"
//	certificate alpha.crt does not allow tap.address 10.254.0.9/16; it allows 10.254.0.1/32, fd54::1/128
func CheckNode(id *Identity, certFile string, ca *x509.Certificate, caFile, network string, addrs map[string]netip.Prefix, now time.Time) error {
	switch {
	case id == nil || id.Cert == nil:
		return errorf(ErrBadCert, "no node certificate loaded from %s", certFile)
	case ca == nil:
		return errorf(ErrBadCert, "no CA certificate loaded from %s", caFile)
	case id.Key == nil || !keyMatches(id.Key, id.Cert):
		return errorf(ErrBadCert, "the node key does not match certificate %s", certFile)
	}
	peer, err := verify(id.Cert, ca, network, now, labels{cert: "certificate " + certFile, ca: "the CA in " + caFile})
	if err != nil {
		return err
	}
	// Sorted keys make the reported problem the same on every start.
	keys := make([]string, 0, len(addrs))
	for k := range addrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		pfx := addrs[k]
		if !pfx.IsValid() || peer.Allows(pfx.Addr()) {
			continue
		}
		return errorf(ErrAddressNotAllowed, "certificate %s does not allow %s %s; it allows %s", certFile, k, pfx, describePrefixes(peer.Prefixes))
	}
	return nil
}

func describePrefixes(prefixes []netip.Prefix) string {
	if len(prefixes) == 0 {
		return "no addresses"
	}
	s := make([]string, len(prefixes))
	for i, p := range prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
