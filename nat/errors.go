package nat

import "errors"

var (
	// ErrBadURL is wrapped by every error about a STUN or TURN URL that
	// does not parse or has the wrong scheme for its list.
	ErrBadURL = errors.New("nat: bad STUN/TURN URL")
	// ErrNoCredentials is wrapped when a TURN server has no username or
	// credential: pion would silently skip it (and every TURN server after
	// it), so we refuse it up front instead.
	ErrNoCredentials = errors.New("nat: TURN server without username or credential")
	// ErrNoTURN is returned by NewAgent when RelayOnly is set but no TURN
	// server is configured, so the agent could never gather a candidate.
	ErrNoTURN = errors.New("nat: relay-only agent without a TURN server")
	// ErrNoAddress is returned by Listen when the interface selection leaves
	// no IPv4 address to offer as a host candidate. pion would otherwise
	// advertise 0.0.0.0, which a peer reads as "itself".
	ErrNoAddress = errors.New("nat: no usable IPv4 interface address")
	// ErrNotIPv4 is returned when a packet is addressed to an IPv6 peer;
	// the socket is IPv4 only (ice network type UDP4).
	ErrNotIPv4 = errors.New("nat: destination is not IPv4")
	// ErrServing is returned by a second call to Serve.
	ErrServing = errors.New("nat: socket already serving")
	// ErrRead wraps a receive error the reader could not get past; Serve
	// returns it and the socket stops reading.
	ErrRead = errors.New("nat: socket read failed")
	// ErrNotConnected is returned by SelectedPath before ICE chose a pair.
	ErrNotConnected = errors.New("nat: no selected candidate pair")
	// ErrServerConfig is wrapped by every error about a bad ServerConfig.
	ErrServerConfig = errors.New("nat: bad STUN/TURN server config")
)
