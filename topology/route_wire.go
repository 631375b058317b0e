package topology

import (
	"errors"
	"fmt"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// ErrRoute: bytes that do not start with a route header this code knows
// (another version, truncated, unknown flag bits, a TTL of 0 or above
// HopLimit, a zero ID, a unicast to itself). Wrapped with detail. The
// packet is dropped and counted; the link it came on stays up.
var ErrRoute = errors.New("topology: malformed route header")

// Route is the header of a routed packet: one that travels over more
// than one link. It goes in front of the payload inside the sealed data
// packet (the link's own framing says that a route header follows).
type Route struct {
	Src nodeid.ID // the originating node
	// Dst is the destination node of a unicast; of a broadcast, the end
	// of the arc this copy covers (Fanout's Branch.Limit), which is Src
	// itself for the originator's whole-ring copies.
	Dst nodeid.ID
	// TTL is how many more hops the packet may take, counting the one it
	// is on: HopLimit when sent, 1..HopLimit on the wire.
	TTL uint8
	// Control: the payload is a control message (link signaling,
	// membership, …), not an Ethernet frame for the TAP.
	Control bool
	// Broadcast: deliver here and pass on with Fanout, rather than Next.
	Broadcast bool
	// Relay: the last hop. The receiver delivers the packet over its own
	// link to Dst or drops it; it never routes it further. A node that
	// has no link nearer Dst sends it so to a linked node that announced
	// a link to Dst (Routes.Relay): a detour of one hop that greedy
	// routing alone would not take, and that cannot loop.
	Relay bool
	// Flood: a control message for Dst that neither greedy routing nor a
	// relay could place (a hole in the ring that no neighbour bridges).
	// Every node passes it once to all its links but the one it came on,
	// until it reaches Dst; nodes drop copies they have seen (the data
	// plane keeps the IDs), and the TTL bounds the rest. Only control
	// messages are flooded, never frames.
	Flood bool
	// Sealed: the payload is sealed end to end between Src and Dst (the
	// data plane's e2e keys), so the nodes it passes can neither read nor
	// alter it; whether it is a frame or a control message is inside.
	Sealed bool
	// Encap: the payload is another routed packet (its header and
	// payload) that Dst takes as if it had come over the link the outer
	// one arrived on. Only with Relay: a node sends a copy of a
	// broadcast so to a node it has no link to, through a linked node
	// that has one (Routes.Fanout's Branch.Via).
	Encap bool
}

// Wire layout of the route header, 67 bytes, then the payload:
//
//	 0  version  1  routeVersion (0x20)
//	 1  flags    1  bit 0: Control; bit 1: Broadcast; bit 2: Relay; bit 3: Flood
//	                (with Control only); bit 4: Sealed (unicast only); bit 5: Encap
//	                (with Relay only, nothing else); other bits 0
//	 2  ttl      1  1..HopLimit
//	 3  src     32  not zero
//	35  dst     32  not zero; ≠ src unless Broadcast
//	67  payload
//
// 64 bytes of IDs is a lot per frame, and it is meant to be: a routed
// path is the exception, and a destination that gets much traffic gets a
// direct link (OnDemand). Full IDs rather than short ones keep the
// decision at each hop exact and the header easy to check.
const (
	routeVersion   = 0x20
	RouteHeaderLen = 67
	routeControl   = 1 << 0
	routeBroadcast = 1 << 1
	routeRelay     = 1 << 2
	routeFlood     = 1 << 3
	routeSealed    = 1 << 4
	routeEncap     = 1 << 5
	routeFlags     = routeControl | routeBroadcast | routeRelay | routeFlood | routeSealed | routeEncap
)

// check enforces the rules of the layout on h.
func (h *Route) check() error {
	switch {
	case h.TTL == 0 || h.TTL > HopLimit:
		return fmt.Errorf("%w: ttl %d outside 1..%d", ErrRoute, h.TTL, HopLimit)
	case h.Src.IsZero() || h.Dst.IsZero():
		return fmt.Errorf("%w: zero node ID", ErrRoute)
	case h.Src == h.Dst && !h.Broadcast:
		return fmt.Errorf("%w: unicast from %s to itself", ErrRoute, h.Src.Short())
	case h.Relay && h.Broadcast:
		return fmt.Errorf("%w: a broadcast is never relayed", ErrRoute)
	case h.Flood && (!h.Control || h.Broadcast || h.Relay):
		return fmt.Errorf("%w: only a unicast control message is flooded", ErrRoute)
	case h.Sealed && (h.Broadcast || h.Flood):
		return fmt.Errorf("%w: only a unicast is sealed end to end", ErrRoute)
	case h.Encap && (!h.Relay || h.Control || h.Sealed):
		return fmt.Errorf("%w: only a relayed packet encapsulates another", ErrRoute)
	}
	return nil
}

// AppendBinary appends the header to b (the payload goes after it). It
// refuses (ErrRoute) what ParseRoute would refuse. It allocates only if
// b lacks RouteHeaderLen bytes of capacity.
func (h *Route) AppendBinary(b []byte) ([]byte, error) {
	if err := h.check(); err != nil {
		return b, err
	}
	var f byte
	if h.Control {
		f |= routeControl
	}
	if h.Broadcast {
		f |= routeBroadcast
	}
	if h.Relay {
		f |= routeRelay
	}
	if h.Flood {
		f |= routeFlood
	}
	if h.Sealed {
		f |= routeSealed
	}
	if h.Encap {
		f |= routeEncap
	}
	b = append(b, routeVersion, f, h.TTL)
	b = append(b, h.Src[:]...)
	return append(b, h.Dst[:]...), nil
}

// MarshalBinary returns the header alone.
func (h *Route) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, RouteHeaderLen))
}

// ParseRoute reads the header at the start of pkt and returns it with
// the payload, which aliases pkt. Errors wrap ErrRoute. It does not
// allocate.
func ParseRoute(pkt []byte) (Route, []byte, error) {
	if len(pkt) < RouteHeaderLen {
		return Route{}, nil, fmt.Errorf("%w: %d bytes, header is %d", ErrRoute, len(pkt), RouteHeaderLen)
	}
	if pkt[0] != routeVersion {
		return Route{}, nil, fmt.Errorf("%w: version %#02x", ErrRoute, pkt[0])
	}
	if pkt[1]&^routeFlags != 0 {
		return Route{}, nil, fmt.Errorf("%w: flags %#02x", ErrRoute, pkt[1])
	}
	h := Route{
		TTL:       pkt[2],
		Src:       nodeid.ID(pkt[3:35]),
		Dst:       nodeid.ID(pkt[35:67]),
		Control:   pkt[1]&routeControl != 0,
		Broadcast: pkt[1]&routeBroadcast != 0,
		Relay:     pkt[1]&routeRelay != 0,
		Flood:     pkt[1]&routeFlood != 0,
		Sealed:    pkt[1]&routeSealed != 0,
		Encap:     pkt[1]&routeEncap != 0,
	}
	if err := h.check(); err != nil {
		return Route{}, nil, err
	}
	return h, pkt[RouteHeaderLen:], nil
}
