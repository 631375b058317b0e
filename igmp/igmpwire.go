package igmp

// IGMP messages (IP protocol 2). All fields are big-endian; the checksum
// covers the whole IGMP message, which is the whole IP payload.
//
//	v1/v2 query, v1/v2 report, leave (8 bytes; RFC 1112, RFC 2236 §2):
//	  0 type | 1 max resp time (v2 query, 1/10 s; 0 otherwise) | 2-3 checksum | 4-7 group
//	v3 query (12+4N bytes, RFC 3376 §4.1):
//	  0-7 as above, byte 1 = Max Resp Code | 8 resv(4) S(1) QRV(3) | 9 QQIC
//	  10-11 number of sources N | 12.. N sources
//	v3 report (RFC 3376 §4.2):
//	  0 type 0x22 | 1 reserved | 2-3 checksum | 4-5 reserved | 6-7 number of records M
//	  each record: 0 type | 1 aux data len (32-bit words) | 2-3 N | 4-7 group
//	               | N sources | aux data

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ParseIGMP parses an IGMP message: the payload of an IPv4 packet after its
// header. It checks the checksum, the lengths and that groups are multicast
// addresses. Records of unknown type are kept (the caller ignores them, as
// RFC 3376 §4.2.12 asks); auxiliary data and bytes after the message are
// skipped.
func ParseIGMP(b []byte) (*Message, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: IGMP message of %d bytes", ErrTruncated, len(b))
	}
	if fold(sum(0, b)) != 0 {
		return nil, fmt.Errorf("%w: IGMP", ErrChecksum)
	}
	m := &Message{Type: Type(b[0]), Group: addr4(b[4:])}
	switch m.Type {
	case TypeIGMPQuery:
		return m, parseIGMPQuery(m, b)
	case TypeIGMPv1Report:
		m.Version = 1
	case TypeIGMPv2Report, TypeIGMPLeave:
		m.Version = 2
	case TypeIGMPv3Report:
		m.Version, m.Group = 3, netip.Addr{}
		return m, parseIGMPv3Report(m, b)
	default:
		return nil, fmt.Errorf("%w: IGMP type %#x", ErrUnknownType, b[0])
	}
	if !isGroup4(m.Group) {
		return nil, fmt.Errorf("%w: %v for non-multicast group %v", ErrMalformed, m.Type, m.Group)
	}
	return m, nil
}

func parseIGMPQuery(m *Message, b []byte) error {
	m.MaxRespCode = uint16(b[1])
	switch {
	case len(b) == 8 && b[1] == 0:
		// RFC 2236 §4: an 8-byte query with a zero code is IGMPv1, whose
		// group field is sent as zero and ignored on receipt.
		m.Version, m.Group = 1, netip.IPv4Unspecified()
		return nil
	case len(b) == 8:
		m.Version = 2
	case len(b) < 12:
		// RFC 3376 §7.1: queries of 9..11 bytes are invalid.
		return fmt.Errorf("%w: IGMP query of %d bytes", ErrMalformed, len(b))
	default:
		m.Version = 3
		m.Suppress, m.QRV, m.QQIC = b[8]&0x08 != 0, b[8]&0x07, b[9]
		n := int(binary.BigEndian.Uint16(b[10:12]))
		if 12+4*n > len(b) {
			return fmt.Errorf("%w: IGMPv3 query with %d sources in %d bytes", ErrTruncated, n, len(b))
		}
		m.Sources = addrs(b[12:], n, 4)
	}
	if !m.Group.IsUnspecified() && !isGroup4(m.Group) {
		return fmt.Errorf("%w: query for non-multicast group %v", ErrMalformed, m.Group)
	}
	if m.Group.IsUnspecified() && len(m.Sources) > 0 {
		return fmt.Errorf("%w: general query with sources", ErrMalformed)
	}
	return nil
}

func parseIGMPv3Report(m *Message, b []byte) error {
	return parseRecords(m, b, "IGMPv3", 4)
}

// parseRecords reads the group records of an IGMPv3 (addrLen 4) or MLDv2
// (addrLen 16) report: the two formats differ only in address size
// (RFC 3376 §4.2.4, RFC 3810 §5.2.4). A record is type, aux-data length in
// words, source count, group, sources, aux data.
func parseRecords(m *Message, b []byte, proto string, addrLen int) error {
	n := int(binary.BigEndian.Uint16(b[6:8]))
	p := b[8:]
	head := 4 + addrLen
	// Each record takes at least head bytes: do not allocate for a count
	// the message cannot hold.
	if n > len(p)/head {
		return fmt.Errorf("%w: %s report with %d records in %d bytes", ErrTruncated, proto, n, len(b))
	}
	m.Records = make([]Record, n)
	for i := range m.Records {
		if len(p) < head {
			return fmt.Errorf("%w: %s record %d", ErrTruncated, proto, i)
		}
		ns, aux := int(binary.BigEndian.Uint16(p[2:4])), int(p[1])*4
		size := head + addrLen*ns + aux
		if size > len(p) {
			return fmt.Errorf("%w: %s record %d with %d sources", ErrTruncated, proto, i, ns)
		}
		r := Record{Type: RecordType(p[0]), Sources: addrs(p[head:], ns, addrLen)}
		if addrLen == 4 {
			r.Group = addr4(p[4:])
		} else {
			r.Group = addr16(p[4:])
		}
		if (addrLen == 4 && !isGroup4(r.Group)) || (addrLen == 16 && !isGroup6(r.Group)) {
			return fmt.Errorf("%w: record for non-multicast group %v", ErrMalformed, r.Group)
		}
		m.Records[i] = r
		p = p[size:]
	}
	return nil
}

// AppendIGMP appends m, encoded as an IGMP message with its checksum, to b.
// Queries are encoded by Version: 1 (8 bytes, zero code and group), 2 (8
// bytes) or 3 (with S, QRV, QQIC and sources).
func (m *Message) AppendIGMP(b []byte) ([]byte, error) {
	if err := m.check(false); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, byte(m.Type), 0, 0, 0)
	switch m.Type {
	case TypeIGMPQuery:
		g := m.Group
		if m.Version == 1 {
			g = netip.IPv4Unspecified()
		} else {
			b[start+1] = byte(m.MaxRespCode)
		}
		b = appendAddr(b, g)
		if m.Version == 3 {
			b = append(b, flagsQRV(m.Suppress, m.QRV), m.QQIC)
			b = binary.BigEndian.AppendUint16(b, uint16(len(m.Sources)))
			for _, s := range m.Sources {
				b = appendAddr(b, s)
			}
		}
	case TypeIGMPv3Report:
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
		b = appendAddr(b, m.Group)
	}
	binary.BigEndian.PutUint16(b[start+2:], fold(sum(0, b[start:])))
	return b, nil
}

func protoName(mld bool) string {
	if mld {
		return "MLD"
	}
	return "IGMP"
}

func flagsQRV(s bool, qrv uint8) byte {
	f := qrv & 0x07
	if s {
		f |= 0x08
	}
	return f
}

// check validates m before encoding: the type belongs to the protocol, the
// version fits the type, addresses are of the right family and the lists
// fit their 16-bit counts.
func (m *Message) check(mld bool) error {
	if m.Type.IsMLD() != mld {
		return fmt.Errorf("%w: %v is not an %s type", ErrMalformed, m.Type, protoName(mld))
	}
	isGroup, unspec, maxV := isGroup4, netip.IPv4Unspecified(), 3
	if mld {
		isGroup, unspec, maxV = isGroup6, netip.IPv6Unspecified(), 2
	}
	fam := func(a netip.Addr) bool { return a.BitLen() == unspec.BitLen() && !a.Is4In6() }
	switch m.Type {
	case TypeIGMPQuery, TypeMLDQuery:
		if m.Version < 1 || m.Version > maxV {
			return fmt.Errorf("%w: query version %d", ErrMalformed, m.Version)
		}
		if m.Group != unspec && !isGroup(m.Group) && !(m.Type == TypeIGMPQuery && m.Version == 1) {
			return fmt.Errorf("%w: query for %v", ErrMalformed, m.Group)
		}
		if !mld && m.MaxRespCode > 0xff {
			return fmt.Errorf("%w: IGMP max resp code %d", ErrMalformed, m.MaxRespCode)
		}
		if len(m.Sources) > 0xffff || (len(m.Sources) > 0 && (m.Version != maxV || m.Group == unspec)) {
			return fmt.Errorf("%w: %d sources in a v%d query for %v", ErrMalformed, len(m.Sources), m.Version, m.Group)
		}
		for _, s := range m.Sources {
			if !fam(s) {
				return fmt.Errorf("%w: source %v", ErrMalformed, s)
			}
		}
	case TypeIGMPv3Report, TypeMLDv2Report:
		if len(m.Records) > 0xffff {
			return fmt.Errorf("%w: %d records", ErrMalformed, len(m.Records))
		}
		for _, r := range m.Records {
			if !isGroup(r.Group) || len(r.Sources) > 0xffff {
				return fmt.Errorf("%w: record for %v with %d sources", ErrMalformed, r.Group, len(r.Sources))
			}
			for _, s := range r.Sources {
				if !fam(s) {
					return fmt.Errorf("%w: source %v", ErrMalformed, s)
				}
			}
		}
	case TypeIGMPv1Report, TypeIGMPv2Report, TypeIGMPLeave, TypeMLDv1Report, TypeMLDDone:
		if !isGroup(m.Group) {
			return fmt.Errorf("%w: %v for %v", ErrMalformed, m.Type, m.Group)
		}
	default:
		return fmt.Errorf("%w: %v", ErrUnknownType, m.Type)
	}
	return nil
}
