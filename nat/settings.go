// Package nat owns ipopd's NAT traversal: the node's one UDP socket (batched,
// demultiplexed between pion's ICE and ipopd's link layer), ICE agent
// construction over that socket, STUN/TURN URL and credential handling, and
// the STUN/TURN server that ipop-rendezvous runs.
//
// Nothing here names a public server: every STUN and TURN address comes
// from configuration. ICE multicast DNS is always off.
package nat

import (
	"fmt"
	"time"

	"github.com/pion/stun"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// Settings is the node's NAT-traversal config (config keys stun, turn, ice.*).
//
// Port, Interfaces, Exclude and IncludeLoopback choose the socket and its
// host candidates; they take effect at Listen. The rest is read by NewAgent.
type Settings struct {
	STUN []string         // "stun:host[:port]" (not stuns:); no default, never a public server
	TURN []iceserver.TURN // static TURN servers from the node config
	Port int              // ice.port: UDP port of the node's one socket (0 = any)

	// Interfaces, when not empty, lists the only interfaces whose addresses
	// become host candidates. Exclude lists interfaces that never do; ipopd
	// puts its own TAP here so overlay addresses never become candidates
	// (a link tunnelled through itself). Entries are names or path.Match
	// patterns ("veth*").
	Interfaces []string
	Exclude    []string
	// IncludeLoopback offers 127.0.0.0/8 addresses; for tests on loopback.
	IncludeLoopback bool

	// RelayOnly gathers only TURN relay candidates ("force TURN"); tests use
	// it to prove the relay path, operators to get round hostile networks.
	RelayOnly bool

	// ICE consent timers; zero means 2 s, 5 s and 10 s, so a dead peer is
	// noticed (state Failed) within 15 s.
	KeepaliveInterval, DisconnectedTimeout, FailedTimeout time.Duration
}

const (
	defaultKeepalive    = 2 * time.Second
	defaultDisconnected = 5 * time.Second
	defaultFailed       = 10 * time.Second
)

// withDefaults fills the zero timers.
func (s Settings) withDefaults() Settings {
	if s.KeepaliveInterval <= 0 {
		s.KeepaliveInterval = defaultKeepalive
	}
	if s.DisconnectedTimeout <= 0 {
		s.DisconnectedTimeout = defaultDisconnected
	}
	if s.FailedTimeout <= 0 {
		s.FailedTimeout = defaultFailed
	}
	return s
}

// urls turns the STUN list, the static TURN servers and extra into pion
// URIs, checking that each list holds only its own schemes.
func (s Settings) urls(extra []iceserver.TURN) ([]*stun.URI, error) {
	out := make([]*stun.URI, 0, len(s.STUN)+len(s.TURN)+len(extra))
	for _, raw := range s.STUN {
		u, err := ParseURL(raw)
		if err != nil {
			return nil, err
		}
		// pion gathers server-reflexive candidates with plain STUN over UDP
		// whatever the scheme, so a stuns: URL would silently mean
		// unencrypted STUN to port 5349; refuse it instead.
		if u.Scheme != stun.SchemeTypeSTUN {
			return nil, fmt.Errorf("%w: %q in the stun list; want stun:host[:port] (stuns: is not supported; TURN servers go in turn)", ErrBadURL, raw)
		}
		out = append(out, u)
	}
	for _, ts := range append(s.TURN[:len(s.TURN):len(s.TURN)], extra...) {
		u, err := turnURI(ts)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// turnURI parses a TURN server's URL and attaches its credentials.
func turnURI(t iceserver.TURN) (*stun.URI, error) {
	u, err := ParseURL(t.URL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != stun.SchemeTypeTURN && u.Scheme != stun.SchemeTypeTURNS {
		return nil, fmt.Errorf("%w: %q in the turn list; want turn:host[:port][?transport=udp|tcp] or turns:", ErrBadURL, t.URL)
	}
	if t.Username == "" || t.Credential == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoCredentials, t.URL)
	}
	u.Username, u.Password = t.Username, t.Credential
	return u, nil
}

// ParseURL parses a stun:, stuns:, turn: or turns: URL (RFC 7064, RFC 7065).
// The port defaults to 3478 (5349 for the secure schemes). Errors wrap
// ErrBadURL and say what was expected.
func ParseURL(s string) (*stun.URI, error) {
	const want = "want stun:host[:port], stuns:host[:port], turn:host[:port][?transport=udp|tcp] or turns:host[:port]"
	if s == "" {
		return nil, fmt.Errorf("%w: empty; %s", ErrBadURL, want)
	}
	u, err := stun.ParseURI(s)
	if err != nil {
		// pion's messages ("invalid hostname") do not say which URL or what
		// shape was expected; config errors must.
		return nil, fmt.Errorf("%w: %q: %v; %s", ErrBadURL, s, err, want)
	}
	if u.Port < 1 || u.Port > 65535 {
		return nil, fmt.Errorf("%w: %q: port %d out of range 1..65535", ErrBadURL, s, u.Port)
	}
	return u, nil
}
