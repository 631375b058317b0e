// Package trust checks, inside the overlay, that a member speaks only for
// itself: every control message is signed by the node it comes from
// (Envelope), every certificate a node learns is verified against the
// network CA before it counts (Directory), and what a certificate allows
// (its node ID, its addresses) is what the data plane enforces.
//
// A member is trusted to be itself and nothing more. Links authenticate
// their peer with DTLS; that covers frames and messages over the link, but
// not what a peer passes on for others. So a control message that may be
// relayed (routed, broadcast, flooded) carries its origin's signature over
// origin, destination, a per-origin counter and the message, and, where
// the receiver may not know the origin yet, the origin's certificate. The
// route header's source alone proves nothing.
package trust
