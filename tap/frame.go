package tap

// Frame parsing: the first stage of the data path. It looks only at
// headers (Ethernet, one optional 802.1Q tag, IPv4/IPv6 and IPv6 extension
// headers) and never allocates, so it can run on every frame read.

import (
	"encoding/binary"
	"net/netip"
)

// Class is what a frame is, as far as forwarding is concerned.
type Class uint8

// Classes in the order the data path tests them.
const (
	ClassInvalid   Class = iota // too short or malformed headers
	ClassIGMP                   // IPv4 protocol 2 (membership reports, queries, leaves)
	ClassMLD                    // ICMPv6 130, 131, 132, 143
	ClassARP                    // ethertype 0x0806
	ClassNDP                    // ICMPv6 133..137 (router/neighbour solicitation/advert, redirect)
	ClassBroadcast              // ff:ff:ff:ff:ff:ff
	ClassMulticast              // group bit set in the destination MAC
	ClassUnicast
	NumClasses
)

var classNames = [NumClasses]string{"invalid", "igmp", "mld", "arp", "ndp", "broadcast", "multicast", "unicast"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "unknown"
}

// Ethertypes ipopd looks at.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100
	EtherTypeIPv6 = 0x86dd
)

// IP protocol numbers (also IPv6 next-header values).
const (
	protoHopByHop = 0
	protoIGMP     = 2
	protoRouting  = 43
	protoFragment = 44
	protoICMPv6   = 58
	protoDestOpts = 60
)

// Parsed is what the data plane needs of a frame's headers. The reader
// that got a frame parses it once (Parse), and every stage after it
// (classification, snooping, multicast routing, delivery) reads this small
// value instead of the bytes again, as tailscale's packet.Parsed.
type Parsed struct {
	Class     Class
	EtherType uint16 // after one 802.1Q tag
	VLAN      bool   // the frame carried one 802.1Q tag
	// Src and Dst are the IP source and destination of IPv4 and IPv6
	// frames, and the sender and target protocol addresses of IPv4 ARP;
	// invalid otherwise.
	Src, Dst netip.Addr
	// Target is the target address of an IPv6 neighbour solicitation or
	// advertisement (ICMPv6 135, 136): what an advertisement claims.
	Target netip.Addr
	// ICMPv6 is the ICMPv6 type of NDP and MLD frames, 0 otherwise.
	ICMPv6 uint8
}

// Parse reads frame's headers. Control protocols (IGMP, MLD, ARP, NDP) are
// recognised whatever their destination MAC, because the querier and the
// neighbour table must see unicast ones too. It never allocates.
func Parse(frame []byte) Parsed {
	if len(frame) < EthHeaderLen {
		return Parsed{Class: ClassInvalid}
	}
	p := Parsed{EtherType: binary.BigEndian.Uint16(frame[12:14])}
	payload := frame[EthHeaderLen:]
	if p.EtherType == EtherTypeVLAN {
		if len(payload) < 4 {
			return Parsed{Class: ClassInvalid}
		}
		p.VLAN, p.EtherType = true, binary.BigEndian.Uint16(payload[2:4])
		payload = payload[4:]
	}
	p.Class = dstClass(frame)
	switch p.EtherType {
	case EtherTypeARP:
		p.Class = ClassARP
		// Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
		if len(payload) >= 28 && payload[0] == 0 && payload[1] == 1 && payload[2] == 8 && payload[3] == 0 && payload[4] == 6 && payload[5] == 4 {
			p.Src, p.Dst = netip.AddrFrom4([4]byte(payload[14:18])), netip.AddrFrom4([4]byte(payload[24:28]))
		}
	case EtherTypeIPv4:
		if len(payload) >= 20 && payload[0]>>4 == 4 {
			p.Src, p.Dst = netip.AddrFrom4([4]byte(payload[12:16])), netip.AddrFrom4([4]byte(payload[16:20]))
			if payload[9] == protoIGMP {
				p.Class = ClassIGMP
			}
		}
	case EtherTypeIPv6:
		if len(payload) >= 40 && payload[0]>>4 == 6 {
			p.Src, p.Dst = netip.AddrFrom16([16]byte(payload[8:24])), netip.AddrFrom16([16]byte(payload[24:40]))
		}
		if msg, ok := icmpv6(payload); ok {
			switch t := msg[0]; {
			case t == 130 || t == 131 || t == 132 || t == 143:
				p.Class, p.ICMPv6 = ClassMLD, t
			case t >= 133 && t <= 137:
				p.Class, p.ICMPv6 = ClassNDP, t
				if (t == 135 || t == 136) && len(msg) >= 24 {
					p.Target = netip.AddrFrom16([16]byte(msg[8:24]))
				}
			}
		}
	}
	return p
}

// Classify says what frame is: Parse(frame).Class.
func Classify(frame []byte) Class { return Parse(frame).Class }

// Group returns the group and source of an IP multicast frame: ok is false
// unless the frame is multicast (not broadcast, not IGMP/MLD) and IPv4 or
// IPv6 with a multicast destination address.
func (p *Parsed) Group() (group, src netip.Addr, ok bool) {
	if p.Class != ClassMulticast || !p.Dst.IsMulticast() {
		return netip.Addr{}, netip.Addr{}, false
	}
	return p.Dst, p.Src, true
}

func dstClass(frame []byte) Class {
	dst := frame[:6]
	switch {
	case dst[0] == 0xff && dst[1] == 0xff && dst[2] == 0xff && dst[3] == 0xff && dst[4] == 0xff && dst[5] == 0xff:
		return ClassBroadcast
	case dst[0]&1 == 1:
		return ClassMulticast
	}
	return ClassUnicast
}

// icmpv6 walks the IPv6 extension headers (MLD always sits behind a
// hop-by-hop header carrying Router Alert) and returns the ICMPv6 message
// (at least its type byte).
func icmpv6(ip []byte) ([]byte, bool) {
	if len(ip) < 40 || ip[0]>>4 != 6 {
		return nil, false
	}
	next, p := ip[6], ip[40:]
	for range 8 { // bound the walk: a chain longer than this is not MLD/NDP
		switch next {
		case protoICMPv6:
			if len(p) < 1 {
				return nil, false
			}
			return p, true
		case protoHopByHop, protoRouting, protoDestOpts:
			if len(p) < 8 {
				return nil, false
			}
			n := (int(p[1]) + 1) * 8
			if len(p) < n {
				return nil, false
			}
			next, p = p[0], p[n:]
		case protoFragment:
			// Only a first fragment has the upper-layer header.
			if len(p) < 8 || binary.BigEndian.Uint16(p[2:4])&0xfff8 != 0 {
				return nil, false
			}
			next, p = p[0], p[8:]
		default:
			return nil, false
		}
	}
	return nil, false
}
