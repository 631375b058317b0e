package arp

import "errors"

// Every error of this package wraps one of these, so that callers count bad
// input by kind without reading messages. None is fatal: a frame or advert
// that causes one leaves the table as it was.
var (
	// ErrTruncated: the frame ends before a header or a length field says.
	ErrTruncated = errors.New("arp: truncated")
	// ErrMalformed: lengths add up but the contents break the protocol
	// (RFC 4861 §7.1 validity checks, a bad ND option length, a fragment),
	// or an advert breaks its layout.
	ErrMalformed = errors.New("arp: malformed")
	// ErrChecksum: the ICMPv6 checksum is wrong.
	ErrChecksum = errors.New("arp: bad checksum")
	// ErrNotLocal: an ND message with a hop limit other than 255, which
	// cannot have come from this link (RFC 4861 §7.1.1, §7.1.2).
	ErrNotLocal = errors.New("arp: neighbour discovery from off-link")
	// ErrNotNeighbor: the frame is neither ARP nor ICMPv6 neighbour
	// discovery (types 133..137), or its IPv6 extension headers do not
	// lead to ICMPv6.
	ErrNotNeighbor = errors.New("arp: not an ARP or neighbour discovery frame")
	// ErrUnsupported: ARP or ND that this package leaves alone: ARP for
	// other hardware or protocol types or with other operations (RARP,
	// InARP), router solicitations and advertisements, redirects. Local
	// forwards these without counting an error.
	ErrUnsupported = errors.New("arp: unsupported ARP or ICMPv6 message")
	// ErrVersion: an advert in a format version this code does not know.
	ErrVersion = errors.New("arp: unknown advert version")
	// ErrLimit: an advert lists more than MaxHosts hosts.
	ErrLimit = errors.New("arp: advert over limits")
	// ErrNodeID: Remote was given the zero NodeID, which means this node.
	ErrNodeID = errors.New("arp: zero node ID for a remote frame")
)
