package overlay

import "errors"

var (
	// ErrBadSignal marks a link-signaling message that does not parse or
	// breaks the protocol; it is dropped and counted.
	ErrBadSignal = errors.New("overlay: bad link signaling message")
	// ErrPeerID means a link peer's certificate names another node than
	// signaling did.
	ErrPeerID = errors.New("overlay: peer certificate is for another node")
	// ErrNoLink means there is no link up to that peer.
	ErrNoLink = errors.New("overlay: no link up to that peer")
	// ErrClosed is returned after the manager has stopped.
	ErrClosed = errors.New("overlay: manager closed")
)

// ErrNoRoute: no link up to the node and no link nearer it on the ring.
var ErrNoRoute = errors.New("overlay: no route to that node")
