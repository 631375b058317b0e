package igmp

// Link and IP layers around IGMP and MLD.
//
// Input takes a whole Ethernet frame as read from the TAP (one 802.1Q tag
// allowed, as tap.Classify allows) and needs from it only the source MAC,
// the IP addresses, the TTL or hop limit, whether Router Alert is present,
// and the IGMP or ICMPv6 payload. Queries go out as
//
//	IPv4: Ethernet | IPv4, IHL 6, TOS 0xc0, DF, TTL 1, proto 2 | Router Alert (94 04 00 00) | IGMP
//	IPv6: Ethernet | IPv6, hop limit 1, next 0 | Hop-by-Hop: Router Alert 0 (MLD), PadN | ICMPv6
//
// which is what Linux itself sends (TTL 1 and Router Alert: RFC 2236 §2,
// RFC 3376 §4, RFC 3810 §5; TOS 0xc0 is Internetwork Control).

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

const (
	ethHeaderLen  = 14
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
)

// packet is what Input needs from a frame. payload is borrowed from it.
type packet struct {
	srcMAC   [6]byte
	src, dst netip.Addr
	hops     uint8 // TTL or hop limit
	alert    bool  // Router Alert (for IPv6: with value 0, MLD)
	payload  []byte
}

func parseFrame(frame []byte) (packet, error) {
	var p packet
	if len(frame) < ethHeaderLen {
		return p, fmt.Errorf("%w: frame of %d bytes", ErrTruncated, len(frame))
	}
	copy(p.srcMAC[:], frame[6:12])
	etype, ip := binary.BigEndian.Uint16(frame[12:14]), frame[ethHeaderLen:]
	if etype == etherTypeVLAN {
		if len(ip) < 4 {
			return p, fmt.Errorf("%w: VLAN tag", ErrTruncated)
		}
		etype, ip = binary.BigEndian.Uint16(ip[2:4]), ip[4:]
	}
	switch etype {
	case etherTypeIPv4:
		return p, parseIPv4(&p, ip)
	case etherTypeIPv6:
		return p, parseIPv6(&p, ip)
	}
	return p, fmt.Errorf("%w: ethertype %#04x", ErrNotIGMP, etype)
}

func parseIPv4(p *packet, ip []byte) error {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return fmt.Errorf("%w: IPv4 header", ErrTruncated)
	}
	hl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
	switch {
	case hl < 20 || total < hl:
		return fmt.Errorf("%w: IPv4 header length %d, total %d", ErrMalformed, hl, total)
	case total > len(ip):
		return fmt.Errorf("%w: IPv4 total length %d in %d bytes", ErrTruncated, total, len(ip))
	case fold(sum(0, ip[:hl])) != 0:
		return fmt.Errorf("%w: IPv4 header", ErrChecksum)
	case ip[9] != protoIGMP:
		return fmt.Errorf("%w: IP protocol %d", ErrNotIGMP, ip[9])
	case binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0:
		// IGMP messages are tiny and never fragmented.
		return fmt.Errorf("%w: IGMP fragment", ErrMalformed)
	}
	// Options: EOL (0), NOP (1), else type, length (>= 2), value.
	for o := ip[20:hl]; len(o) > 0 && o[0] != 0; {
		if o[0] == 1 {
			o = o[1:]
			continue
		}
		if len(o) < 2 || o[1] < 2 || int(o[1]) > len(o) {
			return fmt.Errorf("%w: IPv4 option %d", ErrMalformed, o[0])
		}
		if o[0] == ipv4OptRouterAlert {
			p.alert = true
		}
		o = o[o[1]:]
	}
	p.hops, p.src, p.dst = ip[8], addr4(ip[12:]), addr4(ip[16:])
	p.payload = ip[hl:total] // drops Ethernet padding
	return nil
}

func parseIPv6(p *packet, ip []byte) error {
	if len(ip) < 40 || ip[0]>>4 != 6 {
		return fmt.Errorf("%w: IPv6 header", ErrTruncated)
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if 40+plen > len(ip) {
		return fmt.Errorf("%w: IPv6 payload length %d in %d bytes", ErrTruncated, plen, len(ip)-40)
	}
	p.hops, p.src, p.dst = ip[7], addr16(ip[8:]), addr16(ip[24:])
	next, rest := ip[6], ip[40:40+plen]
	for i := 0; ; i++ {
		if i == 8 { // a longer chain of extension headers is not MLD
			return fmt.Errorf("%w: IPv6 extension header chain", ErrMalformed)
		}
		switch next {
		case protoICMPv6:
			if len(rest) < 1 {
				return fmt.Errorf("%w: ICMPv6", ErrTruncated)
			}
			if t := Type(rest[0]); t != TypeMLDQuery && t != TypeMLDv1Report && t != TypeMLDDone && t != TypeMLDv2Report {
				return fmt.Errorf("%w: ICMPv6 type %d", ErrNotIGMP, rest[0])
			}
			p.payload = rest
			return nil
		case protoHopByHop, protoRouting, protoDestOpts:
			if next == protoHopByHop && i != 0 {
				return fmt.Errorf("%w: hop-by-hop header not first (RFC 8200 §4.1)", ErrMalformed)
			}
			if len(rest) < 8 || len(rest) < (int(rest[1])+1)*8 {
				return fmt.Errorf("%w: IPv6 extension header", ErrTruncated)
			}
			n := (int(rest[1]) + 1) * 8
			if next == protoHopByHop {
				if err := hopByHop(p, rest[2:n]); err != nil {
					return err
				}
			}
			next, rest = rest[0], rest[n:]
		case protoFragment:
			return fmt.Errorf("%w: fragmented IPv6 packet", ErrMalformed)
		default:
			return fmt.Errorf("%w: IPv6 next header %d", ErrNotIGMP, next)
		}
	}
}

// hopByHop looks for Router Alert among the hop-by-hop options.
func hopByHop(p *packet, o []byte) error {
	for len(o) > 0 {
		if o[0] == 0 { // Pad1
			o = o[1:]
			continue
		}
		if len(o) < 2 || 2+int(o[1]) > len(o) {
			return fmt.Errorf("%w: hop-by-hop option %d", ErrMalformed, o[0])
		}
		if o[0] == ipv6OptRouterAlert && o[1] == 2 && o[2] == 0 && o[3] == 0 {
			p.alert = true
		}
		o = o[2+int(o[1]):]
	}
	return nil
}

// Frame returns m as a whole Ethernet frame from srcMAC and src to dst: the
// IP layer as described at the top of this file, the destination MAC
// derived from the multicast address dst (RFC 1112 §6.4: 01:00:5e and the
// low 23 bits; RFC 2464 §7: 33:33 and the low 32 bits).
func (m *Message) Frame(srcMAC net.HardwareAddr, src, dst netip.Addr) ([]byte, error) {
	if len(srcMAC) != 6 {
		return nil, fmt.Errorf("%w: source MAC %v", ErrMalformed, srcMAC)
	}
	if !dst.IsMulticast() {
		return nil, fmt.Errorf("%w: destination %v is not multicast", ErrMalformed, dst)
	}
	d := dst.AsSlice()
	b := make([]byte, 0, 128)
	if m.Type.IsMLD() {
		if !src.Is6() || !dst.Is6() {
			return nil, fmt.Errorf("%w: MLD from %v to %v", ErrMalformed, src, dst)
		}
		b = append(b, 0x33, 0x33, d[12], d[13], d[14], d[15])
		b = append(append(b, srcMAC...), 0x86, 0xdd)
		b = append(b, 0x60, 0, 0, 0, 0, 0, protoHopByHop, 1) // plen filled below; hop limit 1
		b = appendAddr(appendAddr(b, src), dst)
		b = append(b, protoICMPv6, 0, ipv6OptRouterAlert, 2, 0, 0, 1, 0) // RA (MLD), PadN(0)
		var err error
		if b, err = m.AppendMLD(b, src, dst); err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint16(b[ethHeaderLen+4:], uint16(len(b)-ethHeaderLen-40))
		return b, nil
	}
	if !src.Is4() || !dst.Is4() {
		return nil, fmt.Errorf("%w: IGMP from %v to %v", ErrMalformed, src, dst)
	}
	b = append(b, 0x01, 0x00, 0x5e, d[1]&0x7f, d[2], d[3])
	b = append(append(b, srcMAC...), 0x08, 0x00)
	b = append(b, 0x46, 0xc0, 0, 0, 0, 0, 0x40, 0, 1, protoIGMP, 0, 0) // length and checksum below
	b = appendAddr(appendAddr(b, src), dst)
	b = append(b, ipv4OptRouterAlert, 4, 0, 0)
	var err error
	if b, err = m.AppendIGMP(b); err != nil {
		return nil, err
	}
	ip := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[10:], fold(sum(0, ip[:24])))
	return b, nil
}
