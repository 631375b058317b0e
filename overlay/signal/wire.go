package signal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Wire format, both directions, on the TLS stream:
//
//	+----------------------+----------------------------+
//	| length: uint32, BE   | body: length bytes of JSON |
//	+----------------------+----------------------------+
//
// The body is one JSON object, a Message. length counts the body only and
// must be 1..MaxMessageSize; anything else, or a body that does not decode,
// ends the connection (the reader cannot resynchronise a stream whose
// framing it no longer trusts). Unknown JSON fields are ignored and unknown
// types skipped, so either side may add some without breaking the other.
//
// Node IDs are 64 lowercase hex digits (identity.NodeID's text form).
// Examples:
//
//	{"type":"welcome","you":{"id":"3fa9…","name":"alpha"},"stun":["stun:198.18.0.10:3478"],
//	 "turn":[{"url":"turn:198.18.0.10:3478?transport=udp","username":"…","credential":"…"}]}
//	{"type":"peers","reset":true,"more":true,"peers":[{"id":"3fa9…","name":"alpha"},…]}  full list, in parts
//	{"type":"presence","peers":[{"id":"77c0…","name":"beta"}],"left":["3fa9…"]}           changes since
//	{"type":"revoked","revoked":"-----BEGIN IPOPD REVOCATIONS-----…"}                      server → node
//	{"type":"relay","to":"77c0…","payload":{"ufrag":"…"}}          node → server
//	{"type":"relay","from":"3fa9…","to":"77c0…","payload":{…}}       server → node
//	{"type":"error","to":"77c0…","error":"peer not connected"}       server → node
//	{"type":"ping"} / {"type":"pong"}
const (
	// headerSize is the length prefix.
	headerSize = 4
	// MaxMessageSize bounds a body. Signaling (ICE credentials and a few
	// dozen candidates) and presence parts (at most PresencePart nodes)
	// fit easily; the bound is what keeps a hostile peer from making us
	// allocate. A revocation list may take up to 4 MiB.
	MaxMessageSize = 64 << 10
	// maxRevokedSize bounds a revoked message, the one larger kind.
	maxRevokedSize = 4 << 20
	// PresencePart is how many nodes one peers or presence message lists:
	// a presence list of any size goes in parts, never over the limit.
	PresencePart = 256
)

// Message types.
const (
	TypeWelcome  = "welcome"  // server → node, once, first after the handshake
	TypePeers    = "peers"    // server → node: the full presence list, in parts (Reset on the first, More on all but the last)
	TypePresence = "presence" // server → node: nodes that joined (Peers) and left (Left) since the last list or change
	TypeRevoked  = "revoked"  // server → node: the network's revocation list (PEM), at welcome and on every change
	TypeRelay    = "relay"    // node → server → node: Payload for To, stamped with From
	TypeError    = "error"    // server → node: a relay to To was dropped
	TypePing     = "ping"     // either way; answered by a pong
	TypePong     = "pong"
)

// PeerInfo is a node as the rendezvous knows it, from its certificate.
type PeerInfo struct {
	ID   nodeid.ID `json:"id"`
	Name string    `json:"name"`
}

// String returns the short form used in logs, e.g. "peer(alpha/3fa9c1d2)".
func (p PeerInfo) String() string { return "peer(" + p.Name + "/" + p.ID.Short() + ")" }

// Message is one frame's body. Which fields are set depends on Type.
type Message struct {
	Type    string           `json:"type"`
	Peers   []PeerInfo       `json:"peers,omitempty"`
	From    nodeid.ID        `json:"from,omitzero"` // set by the server on relay, never trusted from a node
	To      nodeid.ID        `json:"to,omitzero"`
	Payload json.RawMessage  `json:"payload,omitempty"` // opaque to the server (link signaling)
	STUN    []string         `json:"stun,omitempty"`    // welcome: STUN URLs the node may use
	TURN    []iceserver.TURN `json:"turn,omitempty"`    // welcome: TURN credentials for this node
	You     *PeerInfo        `json:"you,omitempty"`     // welcome: the node as the server saw it
	Error   string           `json:"error,omitempty"`   // error: why a relay was dropped
	Left    []nodeid.ID      `json:"left,omitempty"`    // presence: nodes gone
	Reset   bool             `json:"reset,omitempty"`   // peers: the first part of a full list
	More    bool             `json:"more,omitempty"`    // peers, presence: more parts follow
	Revoked string           `json:"revoked,omitempty"` // revoked: the revocation list, PEM
}

// ReadMessage reads one frame from r. It allocates at most MaxMessageSize
// for the body whatever the length prefix says. Errors wrap ErrTooLarge or
// ErrMalformed for bad frames, or are r's own (io.EOF before a frame starts,
// io.ErrUnexpectedEOF inside one).
func ReadMessage(r io.Reader) (*Message, error) { return readMessage(r, MaxMessageSize) }

// readMessage is ReadMessage with another bound: nodes take frames up to
// maxRevokedSize from the server (which they authenticated), for the
// revocation list.
func readMessage(r io.Reader, limit uint32) (*Message, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	case n > limit:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m := new(Message)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Type == "" {
		return nil, fmt.Errorf("%w: no type", ErrMalformed)
	}
	return m, nil
}

// WriteMessage writes m as one frame with a single Write, so frames from
// one writer are never interleaved on the stream.
func WriteMessage(w io.Writer, m *Message) error {
	frame, err := encode(m)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// encode returns m as a complete frame, header included. Encoding once lets
// the server hand the same bytes to every node of a presence broadcast.
func encode(m *Message) ([]byte, error) {
	if m.Type == "" {
		return nil, fmt.Errorf("%w: no type", ErrMalformed)
	}
	body, err := json.Marshal(m)
	if err != nil {
		// Marshal only fails on a Payload that is not a JSON value.
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	limit := MaxMessageSize
	if m.Type == TypeRevoked {
		limit = maxRevokedSize
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), limit)
	}
	frame := make([]byte, headerSize+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[headerSize:], body)
	return frame, nil
}
