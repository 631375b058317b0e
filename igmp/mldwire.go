package igmp

// MLD messages (ICMPv6). All fields are big-endian; the checksum covers the
// IPv6 pseudo-header and the whole ICMPv6 message.
//
//	MLDv1 query, report, done (24 bytes; RFC 2710 §3):
//	  0 type | 1 code (0) | 2-3 checksum | 4-5 max response delay (ms)
//	  6-7 reserved | 8-23 multicast address
//	MLDv2 query (28+16N bytes; RFC 3810 §5.1):
//	  0-23 as above, bytes 4-5 = Maximum Response Code
//	  24 resv(4) S(1) QRV(3) | 25 QQIC | 26-27 number of sources N | 28.. N sources
//	MLDv2 report (RFC 3810 §5.2):
//	  0 type 143 | 1 reserved | 2-3 checksum | 4-5 reserved | 6-7 number of records M
//	  each record: 0 type | 1 aux data len (32-bit words) | 2-3 N | 4-19 address
//	               | N sources | aux data

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ParseMLDPacket checks the ICMPv6 checksum of payload, sent from src to
// dst, and parses it with ParseMLD.
func ParseMLDPacket(src, dst netip.Addr, payload []byte) (*Message, error) {
	if !src.Is6() || !dst.Is6() {
		return nil, fmt.Errorf("%w: MLD between %v and %v", ErrMalformed, src, dst)
	}
	if fold(sum(pseudo6(src, dst, len(payload)), payload)) != 0 {
		return nil, fmt.Errorf("%w: ICMPv6", ErrChecksum)
	}
	return ParseMLD(payload)
}

// ParseMLD parses an MLD message: an ICMPv6 message of type 130, 131, 132
// or 143. It checks lengths and group addresses but not the checksum, which
// needs the IPv6 addresses (see ParseMLDPacket). Unknown record types are
// kept; auxiliary data and bytes after the message are skipped.
func ParseMLD(b []byte) (*Message, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: ICMPv6 message of %d bytes", ErrTruncated, len(b))
	}
	m := &Message{Type: Type(b[0])}
	switch m.Type {
	case TypeMLDv2Report:
		m.Version = 2
		return m, parseMLDv2Report(m, b)
	case TypeMLDQuery, TypeMLDv1Report, TypeMLDDone:
	default:
		return nil, fmt.Errorf("%w: ICMPv6 type %d", ErrUnknownType, b[0])
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%w: %v of %d bytes", ErrTruncated, m.Type, len(b))
	}
	m.Version, m.Group = 1, addr16(b[8:])
	if m.Type != TypeMLDQuery {
		if !isGroup6(m.Group) {
			return nil, fmt.Errorf("%w: %v for non-multicast address %v", ErrMalformed, m.Type, m.Group)
		}
		return m, nil
	}
	m.MaxRespCode = binary.BigEndian.Uint16(b[4:6])
	switch {
	case len(b) == 24:
	case len(b) < 28:
		// RFC 3810 §8.1: queries of 25..27 bytes are invalid.
		return nil, fmt.Errorf("%w: MLD query of %d bytes", ErrMalformed, len(b))
	default:
		m.Version = 2
		m.Suppress, m.QRV, m.QQIC = b[24]&0x08 != 0, b[24]&0x07, b[25]
		n := int(binary.BigEndian.Uint16(b[26:28]))
		if 28+16*n > len(b) {
			return nil, fmt.Errorf("%w: MLDv2 query with %d sources in %d bytes", ErrTruncated, n, len(b))
		}
		m.Sources = addrs(b[28:], n, 16)
	}
	if !m.Group.IsUnspecified() && !isGroup6(m.Group) {
		return nil, fmt.Errorf("%w: query for non-multicast address %v", ErrMalformed, m.Group)
	}
	if m.Group.IsUnspecified() && len(m.Sources) > 0 {
		return nil, fmt.Errorf("%w: general query with sources", ErrMalformed)
	}
	return m, nil
}

func parseMLDv2Report(m *Message, b []byte) error {
	return parseRecords(m, b, "MLDv2", 16)
}

// AppendMLD appends m, encoded as an ICMPv6 MLD message sent from src to
// dst (the checksum covers them), to b. Queries are encoded by Version: 1
// (24 bytes) or 2 (with S, QRV, QQIC and sources).
func (m *Message) AppendMLD(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := m.check(true); err != nil {
		return b, err
	}
	if !src.Is6() || !dst.Is6() {
		return b, fmt.Errorf("%w: MLD between %v and %v", ErrMalformed, src, dst)
	}
	start := len(b)
	b = append(b, byte(m.Type), 0, 0, 0)
	switch m.Type {
	case TypeMLDv2Report:
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Records)))
		for _, r := range m.Records {
			b = append(b, byte(r.Type), 0)
			b = binary.BigEndian.AppendUint16(b, uint16(len(r.Sources)))
			b = appendAddr(b, r.Group)
			for _, s := range r.Sources {
				b = appendAddr(b, s)
			}
		}
	default:
		var code uint16
		if m.Type == TypeMLDQuery {
			code = m.MaxRespCode
		}
		b = binary.BigEndian.AppendUint16(b, code)
		b = append(b, 0, 0)
		b = appendAddr(b, m.Group)
		if m.Type == TypeMLDQuery && m.Version == 2 {
			b = append(b, flagsQRV(m.Suppress, m.QRV), m.QQIC)
			b = binary.BigEndian.AppendUint16(b, uint16(len(m.Sources)))
			for _, s := range m.Sources {
				b = appendAddr(b, s)
			}
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], fold(sum(pseudo6(src, dst, len(b)-start), b[start:])))
	return b, nil
}
