package dataplane

// Control messages: in-band messages between nodes, sealed like data
// (wire.FlagControl; with a route header when routed). The first payload
// byte is the kind; each kind has one handler, registered by the plane
// that owns it before the readers start:
//
//	kind  owner                 what
//	1     multicast plane       topology.Message (membership deltas, full states, sync)
//	2     neighbour plane       arp.Advert (hosts behind a node)
//	16    link control (ring)   topology.Neighbors; accepted only over the direct link
//	17    link control          link signaling (offer, answer, cand, knock, bye)
//
// A message of a kind nobody handles, or that its handler refuses, is
// dropped and counted (bad_control).

import (
	"errors"
	"fmt"

	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
)

// Control message kinds.
const (
	KindMembership byte = 1
	KindNeighbours byte = 2
	KindRing       byte = 16
	KindSignal     byte = 17
)

// ControlHandler takes a control message of its kind from node from;
// payload is the whole message, kind byte first, borrowed until it returns
// (copy what is kept). direct says it came over the link to from, not
// routed. It runs on a reader goroutine and must not block; an error
// means the message was refused (counted, logged at debug).
type ControlHandler func(from nodeid.ID, payload []byte, direct bool) error

// HandleControl registers h for kind. It must be called before the
// readers start.
func (p *Plane) HandleControl(kind byte, h ControlHandler) { p.handlers[kind] = h }

// ErrNoHandler: a control message of a kind nobody handles.
var ErrNoHandler = errors.New("dataplane: control message of an unknown kind")

// control dispatches a control message from node from.
func (p *Plane) control(from nodeid.ID, payload []byte, direct bool) {
	err := ErrNoHandler
	if len(payload) > 0 {
		if h := p.handlers[payload[0]]; h != nil {
			err = h(from, payload, direct)
		}
	}
	if err != nil {
		p.counters.badControl.Add(1)
		p.log.Debug("control message refused", "from", from.Short(), "err", err)
	}
}

// SendControl sends a control message to node id: over its link, else
// routed through the ring; ErrNoRoute when neither is possible. It may be
// called from any goroutine; control messages are rare, so each call has
// scratch buffers of its own.
func (p *Plane) SendControl(id nodeid.ID, payload []byte) error {
	var s scratch
	if !p.toNode(&s, p.view.Load(), id, wire.FlagControl, payload) {
		return fmt.Errorf("%w: %s", ErrNoRoute, id.Short())
	}
	p.drain(&s)
	return nil
}

// BroadcastControl sends a control message to every node of the overlay
// (along the ring; to every link before there is a ring).
func (p *Plane) BroadcastControl(payload []byte) {
	var s scratch
	p.flood(&s, p.view.Load(), payload, wire.FlagControl)
	p.drain(&s)
}

// ErrNoRoute: no link up to the node and no link nearer it on the ring.
var ErrNoRoute = errors.New("dataplane: no route to that node")

// Control is what the control planes (multicast, neighbours) use of the
// data plane: their messages in and out, and the TAP for the frames they
// make themselves.
type Control interface {
	SendControl(to nodeid.ID, payload []byte) error
	BroadcastControl(payload []byte)
	HandleControl(kind byte, h ControlHandler)
	WriteTAP(frames [][]byte) (int, error)
}

var _ Control = (*Plane)(nil)
