package signal

import "errors"

// Sentinels; errors returned by this package wrap one of these (or
// net.ErrClosed, which after Close is a normal shutdown, not a failure).
var (
	// ErrNotConnected: Send was called while the client has no server.
	ErrNotConnected = errors.New("signal: not connected to a rendezvous server")
	// ErrQueueFull: the client's send queue is full because the server is
	// not reading; the message was not sent.
	ErrQueueFull = errors.New("signal: send queue full")
	// ErrTooLarge: a frame's length exceeds MaxMessageSize.
	ErrTooLarge = errors.New("signal: message too large")
	// ErrMalformed: a frame that is not a valid message (empty, bad JSON,
	// no type, or a payload that is not a JSON value).
	ErrMalformed = errors.New("signal: malformed message")
	// ErrBadConfig: a ServerConfig or ClientConfig that can never work.
	ErrBadConfig = errors.New("signal: bad configuration")
	// ErrRunning: Client.Run was called while it already runs.
	ErrRunning = errors.New("signal: client already running")
	// ErrNotRendezvous: the server's certificate, though of the network,
	// lacks the rendezvous role: any member could otherwise pose as one.
	ErrNotRendezvous = errors.New("signal: server is not a rendezvous")
	// ErrUnexpected: the server's first message was not a welcome.
	ErrUnexpected = errors.New("signal: unexpected message from server")
)
