package overlay

import "errors"

var (
	// ErrBadSignal marks a link-signaling message that does not parse or
	// breaks the protocol; it is dropped and counted.
	ErrBadSignal = errors.New("overlay: bad link signaling message")
	// ErrPeerID means a link peer's certificate names another node than
	// signaling did.
	ErrPeerID = errors.New("overlay: peer certificate is for another node")
	// ErrRoutedNeighbors: a Neighbors message came routed; a node's links
	// are believed only from the node itself, over the link to it.
	ErrRoutedNeighbors = errors.New("overlay: neighbors message not from a linked peer")
	// ErrBadProof: a link-proof message that is malformed, routed, or
	// carries proofs that do not check.
	ErrBadProof = errors.New("overlay: bad link proof message")
)
