package signal

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
)

// tlsConfig returns the TLS 1.3 configuration of one connection, server or
// client side. Both sides present their node certificate and require one
// from the other. crypto/tls's own verification is switched off
// (InsecureSkipVerify, RequireAnyClientCert) because it checks host names
// and key usages that mean nothing here; VerifyPeerCertificate applies
// identity's rules instead: signed by the network CA, in date, for this
// network. The handshake fails unless that check passes.
//
// verified receives the peer the check accepted, and may refuse it
// still (revoked, not a rendezvous); the config is built per connection
// so the closure can hand it to exactly that connection.
// Session resumption is off on both sides: a resumed session would skip
// VerifyPeerCertificate, and so the expiry check.
func tlsConfig(id *identity.Identity, ca *x509.Certificate, network string, verified func(*identity.Peer) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{id.TLS},
		ClientAuth:             tls.RequireAnyClientCert,
		InsecureSkipVerify:     true, // no host names: VerifyPeerCertificate decides
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			peer, err := identity.VerifyRaw(raw, ca, network, time.Now())
			if err != nil {
				return err
			}
			return verified(peer)
		},
	}
}

// peerInfo is what the rendezvous says about a verified peer.
func peerInfo(p *identity.Peer) PeerInfo { return PeerInfo{ID: p.ID, Name: p.Name} }
