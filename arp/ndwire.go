package arp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ICMPv6 types of neighbour discovery (RFC 4861 §4).
const (
	TypeNS = 135 // Neighbor Solicitation
	TypeNA = 136 // Neighbor Advertisement
)

// NS and NA after the IPv6 header (RFC 4861 §4.3, §4.4):
//
//	 0  type      1  135 NS, 136 NA
//	 1  code      1  0
//	 2  checksum  2  ICMPv6, with the pseudo-header
//	 4  flags     4  NA: R (0x80), S (0x40), O (0x20) in the first byte;
//	                 NS: reserved. Receivers ignore the reserved bits.
//	 8  target   16  never multicast
//	24  options   in units of 8 bytes: type, length (in units, ≥ 1), data.
//	              Source (1, in NS) and Target (2, in NA) Link-Layer
//	              Address: 1 unit holding the 6-byte MAC (RFC 4861 §4.6.1).
const (
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoICMPv6   = 58
	protoDestOpts = 60

	ipv6HeaderLen = 40
	ndHopLimit    = 255
	ndMinLen      = 24
	optSourceLL   = 1
	optTargetLL   = 2
	naRouter      = 0x80
	naSolicited   = 0x40
	naOverride    = 0x20
)

// ND is a Neighbor Solicitation or Advertisement with its Ethernet and
// IPv6 headers. Options other than the link-layer address are dropped.
type ND struct {
	Eth      Eth
	Src, Dst netip.Addr // IPv6 header
	Type     uint8      // TypeNS or TypeNA
	// NA flags (RFC 4861 §4.4); always false in an NS.
	Router, Solicited, Override bool
	Target                      netip.Addr
	// LinkAddr is the Source (NS) or Target (NA) Link-Layer Address
	// option, when HasLinkAddr; the first one if the message has several.
	LinkAddr    [6]byte
	HasLinkAddr bool
}

// ParseND parses an Ethernet frame carrying an NS or NA and applies the
// validity checks of RFC 4861 §7.1.1 and §7.1.2: hop limit 255 (a router
// would have decremented it, so the message is from this link), valid
// checksum, code 0, at least 24 bytes, a target that is not multicast,
// options of non-zero length; an NS from the unspecified address (DAD) goes
// to a solicited-node group and has no Source Link-Layer Address option; a
// multicast NA is not solicited. Fragments are refused (RFC 6980 §5).
// Other neighbour discovery messages (RS, RA, redirect) are ErrUnsupported.
// The result does not reference frame.
func ParseND(frame []byte) (*ND, error) {
	eth, etype, p, err := parseEth(frame)
	if err != nil {
		return nil, err
	}
	if etype != etherTypeIPv6 {
		return nil, fmt.Errorf("%w: ethertype %#04x", ErrNotNeighbor, etype)
	}
	return parseND(eth, p)
}

func parseND(eth Eth, p []byte) (*ND, error) {
	if len(p) < ipv6HeaderLen {
		return nil, fmt.Errorf("%w: IPv6 header", ErrTruncated)
	}
	if p[0]>>4 != 6 {
		return nil, fmt.Errorf("%w: IP version %d in an IPv6 frame", ErrMalformed, p[0]>>4)
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if ipv6HeaderLen+plen > len(p) {
		return nil, fmt.Errorf("%w: IPv6 payload length %d in %d bytes", ErrTruncated, plen, len(p)-ipv6HeaderLen)
	}
	n := &ND{Eth: eth, Src: netip.AddrFrom16([16]byte(p[8:24])), Dst: netip.AddrFrom16([16]byte(p[24:40]))}
	hops := p[7]
	msg, err := icmpv6(p[6], p[ipv6HeaderLen:ipv6HeaderLen+plen])
	if err != nil {
		return nil, err
	}
	switch n.Type = msg[0]; {
	case n.Type == 133 || n.Type == 134 || n.Type == 137:
		return nil, fmt.Errorf("%w: ICMPv6 type %d", ErrUnsupported, n.Type)
	case n.Type != TypeNS && n.Type != TypeNA:
		return nil, fmt.Errorf("%w: ICMPv6 type %d", ErrNotNeighbor, n.Type)
	case hops != ndHopLimit:
		return nil, fmt.Errorf("%w: hop limit %d", ErrNotLocal, hops)
	case checksum(n.Src, n.Dst, msg) != 0:
		return nil, fmt.Errorf("%w: ICMPv6 type %d", ErrChecksum, n.Type)
	case msg[1] != 0:
		return nil, fmt.Errorf("%w: ICMPv6 code %d", ErrMalformed, msg[1])
	case len(msg) < ndMinLen:
		return nil, fmt.Errorf("%w: %d-byte neighbour message", ErrMalformed, len(msg))
	}
	n.Target = netip.AddrFrom16([16]byte(msg[8:24]))
	if n.Target.IsMulticast() {
		return nil, fmt.Errorf("%w: multicast target %v", ErrMalformed, n.Target)
	}
	if n.Src.IsMulticast() {
		return nil, fmt.Errorf("%w: multicast source %v", ErrMalformed, n.Src)
	}
	if err := n.options(msg[ndMinLen:]); err != nil {
		return nil, err
	}
	if n.Type == TypeNS {
		if n.Src.IsUnspecified() && (!isSolicitedNode(n.Dst) || n.HasLinkAddr) {
			return nil, fmt.Errorf("%w: DAD solicitation to %v, link address option %v", ErrMalformed, n.Dst, n.HasLinkAddr)
		}
		return n, nil
	}
	f := msg[4]
	n.Router, n.Solicited, n.Override = f&naRouter != 0, f&naSolicited != 0, f&naOverride != 0
	switch {
	case n.Src.IsUnspecified():
		return nil, fmt.Errorf("%w: advertisement from the unspecified address", ErrMalformed)
	case n.Dst.IsMulticast() && n.Solicited:
		return nil, fmt.Errorf("%w: solicited advertisement to %v", ErrMalformed, n.Dst)
	}
	return n, nil
}

// icmpv6 walks the IPv6 extension headers, at most 8, from next header
// next over payload and returns the ICMPv6 message (at least 4 bytes).
func icmpv6(next uint8, p []byte) ([]byte, error) {
	for range 8 {
		switch next {
		case protoICMPv6:
			if len(p) < 4 {
				return nil, fmt.Errorf("%w: %d-byte ICMPv6 message", ErrTruncated, len(p))
			}
			return p, nil
		case protoHopByHop, protoRouting, protoDestOpts:
			if len(p) < 8 || len(p) < (int(p[1])+1)*8 {
				return nil, fmt.Errorf("%w: IPv6 extension header %d", ErrTruncated, next)
			}
			next, p = p[0], p[(int(p[1])+1)*8:]
		case protoFragment:
			return nil, fmt.Errorf("%w: fragmented IPv6 packet", ErrMalformed)
		default:
			return nil, fmt.Errorf("%w: IPv6 next header %d", ErrNotNeighbor, next)
		}
	}
	return nil, fmt.Errorf("%w: IPv6 extension header chain", ErrNotNeighbor)
}

// options reads the options of n's message: every one at least one unit
// long and within the message (RFC 4861 §7.1). Only the link-layer address
// the message type carries is kept; others are skipped (§4.6: receivers
// ignore options they do not recognise), including nonces of enhanced DAD
// (RFC 7527), which Linux puts in its DAD probes.
func (n *ND) options(o []byte) error {
	want := uint8(optSourceLL)
	if n.Type == TypeNA {
		want = optTargetLL
	}
	for len(o) > 0 {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return fmt.Errorf("%w: option %d of bad length", ErrMalformed, o[0])
		}
		l := int(o[1]) * 8
		if o[0] == want && !n.HasLinkAddr {
			// Ethernet addresses take exactly one unit (RFC 2464 §6);
			// Linux drops the message otherwise, and so do we.
			if l != 8 {
				return fmt.Errorf("%w: link-layer address option of %d bytes", ErrMalformed, l)
			}
			n.LinkAddr, n.HasLinkAddr = [6]byte(o[2:8]), true
		}
		o = o[l:]
	}
	return nil
}

// DAD reports whether n is a duplicate address detection probe (RFC 4862
// §5.4.2): an NS from the unspecified address. It binds nothing.
func (n *ND) DAD() bool { return n.Type == TypeNS && n.Src.IsUnspecified() }

// AppendFrame appends n as an Ethernet frame with hop limit 255, no
// extension headers, traffic class and flow label 0, and a right checksum.
// n.Type must be TypeNS or TypeNA.
func (n *ND) AppendFrame(b []byte) []byte {
	ml := ndMinLen
	if n.HasLinkAddr {
		ml += 8
	}
	b = n.Eth.append(b, etherTypeIPv6)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(ml))
	b = append(b, protoICMPv6, ndHopLimit)
	s16, d16, t16 := n.Src.As16(), n.Dst.As16(), n.Target.As16()
	b = append(b, s16[:]...)
	b = append(b, d16[:]...)
	m := len(b)
	var flags byte
	if n.Type == TypeNA {
		flags = bit(n.Router, naRouter) | bit(n.Solicited, naSolicited) | bit(n.Override, naOverride)
	}
	b = append(b, n.Type, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, t16[:]...)
	if n.HasLinkAddr {
		opt := byte(optSourceLL)
		if n.Type == TypeNA {
			opt = optTargetLL
		}
		b = append(b, opt, 1)
		b = append(b, n.LinkAddr[:]...)
	}
	binary.BigEndian.PutUint16(b[m+2:], checksum(n.Src, n.Dst, b[m:]))
	return b
}

func bit(set bool, b byte) byte {
	if set {
		return b
	}
	return 0
}

// naReply is the proxy answer to solicitation req for a host at ip, mac
// (RFC 4861 §7.2.4, §7.2.8): from the target's address and MAC to the
// solicitor, Solicited set, Override clear (a proxy must not override the
// host's own answer), Router as the host's own NAs said, with the Target
// Link-Layer Address option (required when the solicitation was multicast).
// to is the solicitor's MAC.
func naReply(req *ND, to [6]byte, ip netip.Addr, mac [6]byte, router bool) []byte {
	r := ND{
		Eth: Eth{Dst: to, Src: mac, Tagged: req.Eth.Tagged, TCI: req.Eth.TCI},
		Src: ip, Dst: req.Src, Type: TypeNA,
		Router: router, Solicited: true,
		Target: req.Target, LinkAddr: mac, HasLinkAddr: true,
	}
	return r.AppendFrame(make([]byte, 0, r.Eth.len()+ipv6HeaderLen+ndMinLen+8))
}

// solicitedNode returns a's solicited-node multicast group, ff02::1:ff
// followed by its low 24 bits (RFC 4291 §2.7.1), where an NS for a is sent.
func solicitedNode(a netip.Addr) netip.Addr {
	a16 := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: a16[13], 14: a16[14], 15: a16[15]})
}

func isSolicitedNode(a netip.Addr) bool {
	return a.Is6() && solicitedNode(a) == a
}
