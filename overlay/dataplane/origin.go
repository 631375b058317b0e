package dataplane

// What a node may send: a member is trusted to be itself and nothing more.
// A frame from node X (over X's link, or routed with X as its origin) is
// delivered only if what it claims lies in X's certificate:
//
//	IPv4/IPv6 source        in X's prefixes; or unspecified (DHCP, DAD) or
//	                        IPv6 link-local (ND, MLD and friends), which
//	                        claim no overlay address
//	ARP sender address      in X's prefixes, or 0.0.0.0 (a probe)
//	ND advertisement target in X's prefixes, or link-local
//	source MAC              not another node's MAC in use (macTable.learn)
//
// Each refusal is counted by reason. Routed frames from a node whose
// certificate this node has not seen are held (up to maxHeldFrames from
// up to maxHeldOrigins nodes; beyond that dropped as unknown_origin) and
// the node is asked for it (a hello); they go on once it has come.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/topology"
)

// CertOf returns the verified certificate of node id, nil if this node
// has not seen it (or it expired, or it is revoked).
func (p *Plane) CertOf(id nodeid.ID) *identity.Peer { return p.cfg.Directory.Peer(id) }

// SetCert records the verified certificate of the link's peer; frames on
// the link are checked against it. Link control sets it before the path.
func (p *Peer) SetCert(c *identity.Peer) { p.cert.Store(c) }

// proof is the source address a frame proves for its MAC: one its
// certificate allows and that names a host (not link-local, not
// unspecified); invalid otherwise.
func allowedFrom(c *identity.Peer, pf *tap.Parsed, counters *counters) (proof netip.Addr, ok bool) {
	switch pf.EtherType {
	case tap.EtherTypeIPv4, tap.EtherTypeIPv6:
		if !pf.Src.IsValid() {
			return netip.Addr{}, true // no IP header to speak of: nothing claimed
		}
		switch {
		case pf.Src.IsUnspecified() || pf.Src.IsLinkLocalUnicast() && pf.Src.Is6():
		case c.Allows(pf.Src):
			proof = pf.Src
		default:
			counters.spoofedSource.Add(1)
			return netip.Addr{}, false
		}
		if pf.ICMPv6 == 136 && pf.Target.IsValid() && !pf.Target.IsLinkLocalUnicast() && !c.Allows(pf.Target) {
			counters.spoofedND.Add(1)
			return netip.Addr{}, false
		}
		return proof, true
	case tap.EtherTypeARP:
		switch {
		case !pf.Src.IsValid(), pf.Src.IsUnspecified():
			return netip.Addr{}, true
		case c.Allows(pf.Src):
			return pf.Src, true
		}
		counters.spoofedARP.Add(1)
		return netip.Addr{}, false
	}
	return netip.Addr{}, true
}

// Bounds of the frames held for certificates not yet known, and how long
// they wait: a hello takes a round trip; an origin that never answers
// (an invented one) gives up its slot after heldFor.
const (
	maxHeldFrames  = 16
	maxHeldOrigins = 64
	heldFor        = 5 * time.Second
)

// held are routed packets whose origin's certificate is on its way.
type held struct {
	mu sync.Mutex
	by map[nodeid.ID]*heldQueue
}

type heldQueue struct {
	since time.Time
	pkts  [][]byte
}

// hold keeps a copy of a routed packet (route header and payload) from
// origin at now; false when full.
func (h *held) hold(origin nodeid.ID, pkt []byte, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.by == nil {
		h.by = map[nodeid.ID]*heldQueue{}
	}
	q := h.by[origin]
	if q == nil && len(h.by) >= maxHeldOrigins {
		for id, o := range h.by {
			if now.Sub(o.since) > heldFor {
				delete(h.by, id)
			}
		}
		if len(h.by) >= maxHeldOrigins {
			return false
		}
	}
	if q == nil {
		q = &heldQueue{since: now}
		h.by[origin] = q
	}
	if len(q.pkts) >= maxHeldFrames {
		return false
	}
	q.pkts = append(q.pkts, slices.Clone(pkt))
	return true
}

// take returns and forgets what is held for origin.
func (h *held) take(origin nodeid.ID) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.by[origin]
	if q == nil {
		return nil
	}
	delete(h.by, origin)
	return q.pkts
}

// release delivers the packets held for origin, and sends those held
// for it, now that its certificate is known (on a goroutine of its own,
// with its own scratch).
func (p *Plane) release(origin nodeid.ID) {
	in, out := p.held.take(origin), p.outHeld.take(origin)
	if len(in)+len(out) == 0 {
		return
	}
	go func() {
		var s scratch
		v := p.view.Load()
		for _, pkt := range in {
			if len(pkt) > treeHeaderLen && pkt[0] == heldTreeMark {
				p.treeFrame(&s, v, nodeid.ID(pkt[1:1+len(nodeid.ID{})]), pkt[1+len(nodeid.ID{}):])
				continue
			}
			p.routed(&s, v, nil, pkt)
		}
		for _, m := range out {
			if p.cfg.Directory.Peer(origin) != nil { // else it would only be held again
				p.toNode(&s, v, origin, m[0], m[1:])
			}
		}
		p.drain(&s)
	}()
}

// helloEvery bounds the hellos asked of one node, helloRate and
// helloBurst those asked in all.
const (
	helloEvery = time.Second
	helloRate  = 20
	helloBurst = 50
)

// maxHelloAsked bounds the nodes remembered as asked.
const maxHelloAsked = 4096

// hellos remembers when each node was last asked for its certificate.
type hellos struct {
	mu    sync.Mutex
	asked map[nodeid.ID]time.Time
}

// due reports whether id may be asked now, and records it.
func (h *hellos) due(id nodeid.ID, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.asked == nil {
		h.asked = map[nodeid.ID]time.Time{}
	}
	if t, ok := h.asked[id]; ok && now.Sub(t) < helloEvery {
		return false
	}
	if len(h.asked) >= maxHelloAsked {
		for k, t := range h.asked {
			if now.Sub(t) >= helloEvery {
				delete(h.asked, k)
			}
		}
		if len(h.asked) >= maxHelloAsked {
			return false
		}
	}
	h.asked[id] = now
	return true
}

// Hello messages (control kind KindHello): [kind, flags]; flag helloAsk
// asks the receiver to answer with a hello of its own. Their envelopes
// carry the sender's certificate, which is the point.
const helloAsk = 1

// isHello reports whether env is a hello: an envelope whose message is of
// KindHello. (The kind is inside the signed envelope; it is read, not
// trusted, to pick how to send.)
func isHello(env []byte) bool {
	msg, ok := trust.Peek(env)
	return ok && len(msg) > 0 && msg[0] == KindHello
}

// AskCertificate asks node id for its certificate (a hello), within the
// same bounds as the data plane's own asks.
func (p *Plane) AskCertificate(id nodeid.ID) {
	if id != p.self && p.cfg.Directory.Get(id) == nil {
		p.askHello(id)
	}
}

// askHello asks node id (routed) for a hello, at most once a helloEvery.
func (p *Plane) askHello(id nodeid.ID) {
	if !p.hellos.due(id, time.Now()) {
		return
	}
	if !p.helloRate.Allow() {
		// Packets from ever new origins (invented IDs) must not make
		// this node a source of as many messages into the overlay.
		p.counters.helloLimited.Add(1)
		p.limits.hello.Log("origin", id.Short())
		return
	}
	go func() { // not on the reader: signing takes tens of microseconds
		// Unsealed when id's certificate is unknown (toNode), with ours.
		if err := p.SendControl(id, []byte{KindHello, helloAsk}); err != nil {
			p.log.Debug("hello not sent", "to", id.Short(), "err", err)
		}
	}()
}

// onHello takes a hello (its certificate is learned by now) and answers
// one that asks, at most once a helloEvery per node: routed like any
// control message, or, when nothing routes to from yet (this node could
// not check the proofs of the links toward it without its certificate),
// back through via, the link the hello came in on, as a relayed packet.
func (p *Plane) onHello(from nodeid.ID, msg []byte, via *Peer) error {
	if len(msg) == 2 && msg[1]&helloAsk != 0 && p.hellos.due(from, time.Now()) {
		go func() {
			err := p.SendControl(from, []byte{KindHello, 0})
			if errors.Is(err, ErrNoRoute) && via != nil {
				err = p.helloVia(from, via.ID, 0)
			}
			if err != nil {
				p.log.Debug("hello not sent", "to", from.Short(), "err", err)
			}
		}()
	}
	return nil
}

// AskCertificateVia asks node id for its certificate through the linked
// peer via, for a node no route reaches yet: via showed a proof that id
// signed of their link, which this node cannot check without id's
// certificate (overlay/proofs.go), so via links id. The hello goes to via
// as a relayed packet, which via passes only over its own link to id.
// Bounded as AskCertificate is.
func (p *Plane) AskCertificateVia(id, via nodeid.ID) {
	if id == p.self || p.cfg.Directory.Get(id) != nil || !p.hellos.due(id, time.Now()) {
		return
	}
	if !p.helloRate.Allow() {
		p.counters.helloLimited.Add(1)
		p.limits.hello.Log("origin", id.Short())
		return
	}
	go func() {
		if err := p.helloVia(id, via, helloAsk); err != nil {
			p.log.Debug("hello not sent", "to", id.Short(), "via", via.Short(), "err", err)
		}
	}()
}

// helloVia sends id a hello, with this node's certificate, relayed by the
// linked peer via.
func (p *Plane) helloVia(id, via nodeid.ID, flags byte) error {
	env, err := p.cfg.Signer.Seal(id, []byte{KindHello, flags}, true)
	if err != nil {
		return err
	}
	peer, pa := p.view.Load().path(via)
	if peer == nil {
		return fmt.Errorf("%w: %s (no link to %s)", ErrNoRoute, id.Short(), via.Short())
	}
	var s scratch
	h := topology.Route{Src: p.self, Dst: id, TTL: topology.HopLimit, Control: true, Relay: true}
	p.sealRouted(&s, peer, pa, &h, env)
	p.drain(&s)
	p.counters.routedSent.Add(1)
	return nil
}
