package identity

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// Allowed-prefixes extension (non-critical, on node certificates only).
//
//	extnID    1.3.6.1.4.1.32473.87177395.1
//	extnValue OCTET STRING containing the DER of
//	          AllowedPrefixes ::= SEQUENCE OF UTF8String
//
// Each UTF8String is a prefix in netip.Prefix.String form, masked, e.g.
// "10.254.0.1/32", "10.254.0.0/24", "fd54::1/128". An empty SEQUENCE (or a
// missing extension) allows no address.
//
// Why not a 2.25.<UUID> OID: X.667 UUID arcs are 128-bit integers, and Go's
// crypto/x509 (hence crypto/tls and pion/dtls) rejects any certificate whose
// extension OID has an arc above 31 bits with "x509: malformed extension OID
// field", so such a certificate could never complete a handshake. The OID
// therefore sits under IANA PEN 32473 (RFC 5612, the enterprise number set
// aside for documentation), with a sub-arc taken from the first 28 bits of the
// UUID 53238b33-64ed-4a90-af82-d77ab0a60981 (0x53238b3 = 87177395) generated
// for this extension, to stay clear of other users of that arc. Replace it by
// an arc under a PEN registered for ipopd before certificates are issued in
// production: a changed OID makes existing certificates allow no address.
//
// The OID only has meaning on certificates signed by the network CA, and that
// CA only ever signs what Issue builds, so a collision elsewhere cannot grant
// anything.
var oidAllowedPrefixes = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 87177395, 1}

// maxPrefixes bounds what a decoder will accept; far above any real use and
// low enough that a hostile certificate cannot make a peer allocate much.
const maxPrefixes = 1024

// marshalPrefixesExt builds the extension for prefixes, which the caller has
// validated and masked.
func marshalPrefixesExt(prefixes []netip.Prefix) (pkix.Extension, error) {
	// asn1.Marshal picks PrintableString for plain []string; the format says
	// UTF8String, so the elements are built as raw values.
	elems := make([]asn1.RawValue, 0, len(prefixes))
	for _, p := range prefixes {
		elems = append(elems, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(p.String())})
	}
	der, err := asn1.Marshal(elems)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidAllowedPrefixes, Critical: false, Value: der}, nil
}

// parsePrefixesExt decodes the extension value. It accepts only the exact DER
// marshalPrefixesExt would produce for the decoded prefixes: UTF8String
// elements, canonical masked prefixes, no trailing bytes. Being strict means
// there is one encoding per meaning, so two parsers cannot disagree.
func parsePrefixesExt(der []byte) ([]netip.Prefix, error) {
	var elems []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &elems)
	if err != nil {
		return nil, fmt.Errorf("allowed-prefixes extension: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("allowed-prefixes extension: %d trailing bytes", len(rest))
	}
	if len(elems) > maxPrefixes {
		return nil, fmt.Errorf("allowed-prefixes extension: %d prefixes, limit is %d", len(elems), maxPrefixes)
	}
	prefixes := make([]netip.Prefix, 0, len(elems))
	for i, e := range elems {
		if e.Class != asn1.ClassUniversal || e.Tag != asn1.TagUTF8String || e.IsCompound {
			return nil, fmt.Errorf("allowed-prefixes extension: element %d is not a UTF8String", i)
		}
		if !utf8.Valid(e.Bytes) {
			return nil, fmt.Errorf("allowed-prefixes extension: element %d is not valid UTF-8", i)
		}
		s := string(e.Bytes)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("allowed-prefixes extension: element %d: %w", i, err)
		}
		if err := checkPrefix(p); err != nil {
			return nil, fmt.Errorf("allowed-prefixes extension: element %d: %w", i, err)
		}
		if p.String() != s {
			return nil, fmt.Errorf("allowed-prefixes extension: element %d: %q is not in canonical form %q", i, s, p)
		}
		prefixes = append(prefixes, p)
	}
	// Re-encoding catches BER leniencies encoding/asn1 lets through.
	again, err := marshalPrefixesExt(prefixes)
	if err != nil || !bytes.Equal(again.Value, der) {
		return nil, fmt.Errorf("allowed-prefixes extension: not DER")
	}
	return prefixes, nil
}

// checkPrefix rejects prefixes that could never match a configured address:
// unmasked ones and IPv4-mapped IPv6 ones (Allows unmaps addresses first).
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix %v", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("prefix %v: use the plain IPv4 form", p)
	case p.Masked() != p:
		return fmt.Errorf("prefix %v has host bits set (masked: %v)", p, p.Masked())
	}
	return nil
}

// certPrefixes returns the allowed prefixes of cert; none when the extension
// is absent.
func certPrefixes(cert *x509.Certificate) ([]netip.Prefix, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidAllowedPrefixes) {
			return parsePrefixesExt(ext.Value)
		}
	}
	return nil, nil
}

// Role extension (non-critical): what a certificate may act as besides a
// node. extnID 1.3.6.1.4.1.32473.87177395.2 (same arc as above), extnValue
// the DER of a UTF8String, the role's name. Absent: a plain node.
var oidRole = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 87177395, 2}

// RoleRendezvous marks the certificate of a rendezvous server: nodes take
// presence, relays and revocation lists only from a server that has it.
const RoleRendezvous = "rendezvous"

func marshalRoleExt(role string) (pkix.Extension, error) {
	der, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(role)})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidRole, Value: der}, nil
}

// certRole returns the role of cert, "" for a plain node.
func certRole(cert *x509.Certificate) (string, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidRole) {
			continue
		}
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &v)
		if err != nil || len(rest) != 0 || v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String || string(v.Bytes) != RoleRendezvous {
			return "", fmt.Errorf("role extension: want %q", RoleRendezvous)
		}
		return RoleRendezvous, nil
	}
	return "", nil
}
