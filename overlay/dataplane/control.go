package dataplane

// Control messages: in-band messages between nodes, sealed like data
// (wire.FlagControl; with a route header when routed), each in a signed
// envelope of its origin (trust.Signer): the origin's signature over
// origin, destination and message, with a per-origin counter, and the
// origin's certificate when the message is not for a linked peer (which
// knows it from the handshake). Whoever passes a message on cannot alter
// it or send one in another node's name; the route header's source alone
// proves nothing. The first byte of the message is the kind; each kind has
// one handler, registered by the plane that owns it before the readers
// start:
//
//	kind  owner                 what
//	1     multicast plane       topology.Message (membership deltas, full states, sync)
//	2     neighbour plane       arp.Advert (hosts behind a node)
//	3     data plane            hello: a node's certificate, asked for (origin.go)
//	4     multicast plane       topology.TreeMsg (tree join, prune, redirect, ack)
//	16    link control (ring)   topology.Neighbors; accepted only over the direct link
//	17    link control          link signaling (offer, answer, cand, knock, bye)
//	18    link control (ring)   link proofs (trust.LinkProof); accepted only over the direct link
//
// A message whose envelope does not check (bad_origin), of a kind nobody
// handles, or that its handler refuses (bad_control) is dropped and
// counted.

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
	KindHello      byte = 3
	KindTree       byte = 4 // topology.TreeMsg between tree neighbours (overlay/mcast/tree.go)
	KindRing       byte = 16
	KindSignal     byte = 17
	KindProof      byte = 18
	KindGone       byte = 19 // a node seems gone: [19, its ID (32)] (overlay/mcast/gone.go)
)

// ControlHandler takes a control message of its kind from node from,
// whose signature has been checked; payload is the whole message, kind
// byte first, borrowed until it returns (copy what is kept). direct says
// it came over the link to from, not routed. It runs on a reader goroutine
// and must not block; an error means the message was refused (counted,
// logged at debug).
type ControlHandler func(from nodeid.ID, payload []byte, direct bool) error

// HandleControl registers h for kind. It must be called before the
// readers start.
func (p *Plane) HandleControl(kind byte, h ControlHandler) { p.handlers[kind] = h }

// ErrNoHandler: a control message of a kind nobody handles.
var ErrNoHandler = errors.New("dataplane: control message of an unknown kind")

// control checks the envelope of a control message from node from
// (broadcast: it came as a ring broadcast, signed for every node) and
// dispatches the message. via is the link a routed message came in on
// (nil otherwise): a hello is answered back through it when nothing else
// reaches from.
func (p *Plane) control(from nodeid.ID, env []byte, direct, broadcast bool, via *Peer) {
	dst := p.self
	if broadcast {
		dst = nodeid.ID{}
	}
	msg, _, err := p.cfg.Directory.Open(from, dst, env)
	if err != nil {
		p.counters.badOrigin.Add(1)
		p.log.Debug("control message refused", "from", from.Short(), "err", err)
		return
	}
	p.release(from) // frames that waited for from's certificate
	err = ErrNoHandler
	if msg[0] == KindHello {
		err = p.onHello(from, msg, via)
	} else if h := p.handlers[msg[0]]; h != nil {
		err = h(from, msg, direct)
	}
	if err != nil {
		p.counters.badControl.Add(1)
		p.log.Debug("control message refused", "from", from.Short(), "kind", msg[0], "err", err)
	}
}

// SendControl sends a control message to node id: over its link, else
// routed through the ring; ErrNoRoute when neither is possible. It may be
// called from any goroutine; control messages are rare, so each call has
// scratch buffers of its own.
func (p *Plane) SendControl(id nodeid.ID, payload []byte) error {
	v := p.view.Load()
	env, err := p.cfg.Signer.Seal(id, payload, !v.Linked(id))
	if err != nil {
		return err
	}
	var s scratch
	if !p.toNode(&s, v, id, wire.FlagControl, env) {
		return fmt.Errorf("%w: %s", ErrNoRoute, id.Short())
	}
	p.drain(&s)
	return nil
}

// BroadcastControl sends a control message to every node of the overlay
// (along the ring; to every link before there is a ring).
func (p *Plane) BroadcastControl(payload []byte) {
	env, err := p.cfg.Signer.Seal(nodeid.ID{}, payload, true)
	if err != nil {
		p.log.Error("control message not signed", "err", err)
		return
	}
	var s scratch
	p.flood(&s, p.view.Load(), env, wire.FlagControl)
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
