package arp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ARP operations (RFC 826).
const (
	OpRequest = 1
	OpReply   = 2
)

// ARP packet layout for Ethernet and IPv4 (RFC 826), 28 bytes after the
// Ethernet header:
//
//	 0  hardware type  2  1 (Ethernet)
//	 2  protocol type  2  0x0800 (IPv4)
//	 4  hlen, plen     1+1  6, 4
//	 6  operation      2  1 request, 2 reply
//	 8  sender MAC     6
//	14  sender IP      4
//	18  target MAC     6  ignored in requests (usually zero)
//	24  target IP      4
const (
	arpLen       = 28
	arpHWEther   = 1
	arpProtoIPv4 = 0x0800
)

// ARP is an Ethernet/IPv4 ARP packet with its link header.
type ARP struct {
	Eth       Eth
	Op        uint16 // OpRequest or OpReply
	SenderMAC [6]byte
	SenderIP  netip.Addr // always a 4-byte address
	TargetMAC [6]byte
	TargetIP  netip.Addr
}

// ParseARP parses an Ethernet frame carrying ARP. ARP for other hardware or
// protocol types and other operations (RARP, InARP) are ErrUnsupported; a
// frame of another ethertype is ErrNotNeighbor. Bytes after the 28 of ARP
// are Ethernet padding and ignored. The result does not reference frame.
func ParseARP(frame []byte) (*ARP, error) {
	eth, etype, p, err := parseEth(frame)
	if err != nil {
		return nil, err
	}
	if etype != etherTypeARP {
		return nil, fmt.Errorf("%w: ethertype %#04x", ErrNotNeighbor, etype)
	}
	return parseARP(eth, p)
}

func parseARP(eth Eth, p []byte) (*ARP, error) {
	if len(p) < 8 {
		return nil, fmt.Errorf("%w: %d-byte ARP packet", ErrTruncated, len(p))
	}
	hw, proto := binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4])
	op := binary.BigEndian.Uint16(p[6:8])
	switch {
	case hw != arpHWEther || proto != arpProtoIPv4:
		return nil, fmt.Errorf("%w: ARP hardware type %d, protocol %#04x", ErrUnsupported, hw, proto)
	case p[4] != 6 || p[5] != 4:
		// The lengths are implied by the types: anything else is a lie.
		return nil, fmt.Errorf("%w: ARP address lengths %d, %d for Ethernet/IPv4", ErrMalformed, p[4], p[5])
	case op != OpRequest && op != OpReply:
		return nil, fmt.Errorf("%w: ARP operation %d", ErrUnsupported, op)
	case len(p) < arpLen:
		return nil, fmt.Errorf("%w: %d-byte ARP packet", ErrTruncated, len(p))
	}
	return &ARP{
		Eth:       eth,
		Op:        op,
		SenderMAC: [6]byte(p[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(p[14:18])),
		TargetMAC: [6]byte(p[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(p[24:28])),
	}, nil
}

// Gratuitous reports whether a is an announcement of its sender's own
// binding: sender IP = target IP, in a request (RFC 5227 §2.3, ARP
// Announcement) or a reply (as some hosts send it).
func (a *ARP) Gratuitous() bool { return a.SenderIP == a.TargetIP && !a.SenderIP.IsUnspecified() }

// Probe reports whether a is an address conflict probe (RFC 5227 §2.1.1):
// sender IP 0.0.0.0. It binds nothing.
func (a *ARP) Probe() bool { return a.SenderIP.IsUnspecified() }

// AppendFrame appends a as an Ethernet frame, without padding (the kernel
// pads short frames it sends on real NICs). SenderIP and TargetIP must be
// IPv4 addresses.
func (a *ARP) AppendFrame(b []byte) []byte {
	b = a.Eth.append(b, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, arpHWEther)
	b = binary.BigEndian.AppendUint16(b, arpProtoIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, a.Op)
	s4, t4 := a.SenderIP.As4(), a.TargetIP.As4()
	b = append(b, a.SenderMAC[:]...)
	b = append(b, s4[:]...)
	b = append(b, a.TargetMAC[:]...)
	return append(b, t4[:]...)
}

// arpReply is the answer to request for target ip at mac, as the host
// itself would give it: to the requester's hardware address (RFC 826,
// "swap the hardware and protocol fields"), with the target's MAC as the
// Ethernet source so that a bridge learns it on the TAP's port.
func arpReply(req *ARP, ip netip.Addr, mac [6]byte) []byte {
	r := ARP{
		Eth:       Eth{Dst: req.SenderMAC, Src: mac, Tagged: req.Eth.Tagged, TCI: req.Eth.TCI},
		Op:        OpReply,
		SenderMAC: mac,
		SenderIP:  ip,
		TargetMAC: req.SenderMAC,
		TargetIP:  req.SenderIP,
	}
	return r.AppendFrame(make([]byte, 0, r.Eth.len()+arpLen))
}
