// Package identity owns who a node is and whom it trusts: the network CA, the
// node certificates it issues, and the checks every link and the rendezvous
// run on a peer's certificate.
//
// A network has one CA (ipopctl ca init). Every node holds a certificate issued
// by it (ipopctl cert issue) that carries:
//
//   - the node name: Subject CommonName, repeated as a DNS SAN;
//   - the network name: Subject Organization (on the CA certificate too);
//   - the allowed overlay prefixes: a non-critical extension (see ext.go), with
//     the prefixes' addresses copied into the IP SANs for people reading
//     `openssl x509 -text`; only the extension is authoritative;
//   - the expiry: NotAfter.
//
// Keys are ECDSA P-256 because every DTLS 1.2 peer (pion/dtls/v2) and TLS
// stack supports the ECDHE_ECDSA suites; node certificates carry both the
// ClientAuth and ServerAuth extended key usages because a node is client and
// server in turn.
//
// # Node ID
//
// A node ID (nodeid.ID) is the SHA-256 of the node's public key as a DER
// SubjectPublicKeyInfo. It is derived from the key every time and never read
// from a certificate field, so a node cannot claim another node's ID without
// its private key.
//
// # Allowed prefixes
//
// A configured address (for example tap.address 10.254.0.1/16) is allowed
// when its IP lies inside one of the certificate's prefixes; the configured
// prefix length is not compared. Issuing with 10.254.0.1/32 therefore allows
// exactly that address, and 10.254.0.0/24 allows any address in the range,
// which switch mode needs for the hosts behind a node. A certificate with no
// prefixes allows no address at all. Prefixes are stored masked, so
// 10.254.0.1/24 is issued as 10.254.0.0/24.
//
// # Errors
//
// Verification failures wrap one of the sentinels in errors.go and read as one
// sentence a person can act on, e.g.
//
//	certificate alpha.crt expired on 2026-01-02 15:04 UTC
package identity
