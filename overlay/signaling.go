package overlay

// Link signaling: the messages two nodes exchange, relayed by the rendezvous
// (signal.Message payloads), to set up an ICE + DTLS link.
//
//	initiator (lower node ID)          responder
//	  offer {session, boot, ufrag, pwd} ─►
//	                                   ◄─ answer {session, boot, ufrag, pwd}
//	  cand {session, cand} ◄──────────► cand {session, cand}   (trickle)
//	  ICE: Dial (controlling)            Accept (controlled)
//	  DTLS client ◄────── handshake ────► DTLS server
//
// Signaling travels through the overlay (a control message, routed if need
// be) when the peer is reachable there, else through the rendezvous.
//
// A responder that wants a link (it sees the initiator present but has none)
// sends knock {boot}; the initiator answers with an offer unless its link to
// that boot of the peer is already up. bye {session, why} ends a link at
// once, so peers need not wait for ICE to time out: why is "unneeded"
// (the ring closes a link neither end wants; the peer stays known),
// "leaving" (the node shuts down) or empty (restart).
//
// The payload is JSON. Every field is bounded; anything else is ErrBadSignal.

import (
	"encoding/json"
	"fmt"
)

// Message kinds.
const (
	kindOffer  = "offer"
	kindAnswer = "answer"
	kindCand   = "cand"
	kindKnock  = "knock"
	kindBye    = "bye"

	byeUnneeded = "unneeded"
	byeLeaving  = "leaving"
)

// Limits on fields from the wire. ICE ufrags are 4..256 chars and pwds
// 22..256 (RFC 8839); candidate lines are short.
const (
	maxCredLen = 256
	maxCandLen = 512
	maxMsgLen  = 2048
)

type linkMsg struct {
	Kind    string `json:"kind"`
	Session uint64 `json:"session,omitempty"`
	Boot    uint64 `json:"boot,omitempty"`
	Ufrag   string `json:"ufrag,omitempty"`
	Pwd     string `json:"pwd,omitempty"`
	Cand    string `json:"cand,omitempty"`
	Why     string `json:"why,omitempty"`
}

func (m *linkMsg) marshal() []byte {
	b, _ := json.Marshal(m) // cannot fail: only strings and integers
	return b
}

// parseLinkMsg decodes and validates a payload from another node.
func parseLinkMsg(b []byte) (*linkMsg, error) {
	if len(b) > maxMsgLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSignal, len(b))
	}
	var m linkMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignal, err)
	}
	switch m.Kind {
	case kindOffer, kindAnswer:
		if m.Session == 0 || m.Boot == 0 || m.Ufrag == "" || m.Pwd == "" || len(m.Ufrag) > maxCredLen || len(m.Pwd) > maxCredLen {
			return nil, fmt.Errorf("%w: %s needs session, boot, ufrag and pwd", ErrBadSignal, m.Kind)
		}
	case kindCand:
		if m.Session == 0 || m.Cand == "" || len(m.Cand) > maxCandLen {
			return nil, fmt.Errorf("%w: cand needs session and a candidate", ErrBadSignal)
		}
	case kindKnock:
		if m.Boot == 0 {
			return nil, fmt.Errorf("%w: knock needs boot", ErrBadSignal)
		}
	case kindBye:
		if m.Session == 0 {
			return nil, fmt.Errorf("%w: bye needs session", ErrBadSignal)
		}
		if m.Why != "" && m.Why != byeUnneeded && m.Why != byeLeaving {
			return nil, fmt.Errorf("%w: bye reason %q", ErrBadSignal, m.Why)
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadSignal, m.Kind)
	}
	return &m, nil
}
