// Package linktest has fakes for the link layer, beside the interfaces
// they stand in for (as wireguard-go's conn/bindtest): an in-memory
// rendezvous (Hub), a socket that records what it sends, and Node, a
// whole link stack (socket, data plane, link control, fake TAP) in one
// process. With them, multi-node tests of ICE, DTLS, routing and the
// ring run inside `go test`, on loopback, without root.
package linktest

import (
	"errors"
	"slices"
	"sync"

	"github.com/ipopd/ipopd/overlay"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// ErrDown is what a Port's Send returns while the hub is down or the
// destination has not joined.
var ErrDown = errors.New("linktest: rendezvous down or node unknown")

// Member is what the hub delivers to: a node's link control
// (overlay.Manager).
type Member interface {
	OnRelay(from nodeid.ID, payload []byte)
	OnPeers(peers []overlay.PeerInfo)
}

// Hub is an in-memory rendezvous. It relays link signaling between the
// nodes that joined it and, like ipop-rendezvous, gives every node the
// list of the others whenever one joins or leaves. The zero Hub is not
// usable: NewHub makes one.
type Hub struct {
	mu    sync.Mutex
	nodes map[nodeid.ID]hubNode
	down  bool
}

type hubNode struct {
	name string
	m    Member
}

// NewHub returns a hub with no nodes.
func NewHub() *Hub { return &Hub{nodes: map[nodeid.ID]hubNode{}} }

// Port is one node's connection to the hub; it implements overlay.Signaler.
type Port struct {
	h    *Hub
	self nodeid.ID
}

// Port returns the signaling port of node id (it may Send before it joins).
func (h *Hub) Port(id nodeid.ID) *Port { return &Port{h: h, self: id} }

// Send relays payload to node to, as the rendezvous would.
func (p *Port) Send(to nodeid.ID, payload []byte) error {
	p.h.mu.Lock()
	n, ok := p.h.nodes[to]
	down := p.h.down
	p.h.mu.Unlock()
	if down || !ok {
		return ErrDown
	}
	n.m.OnRelay(p.self, slices.Clone(payload))
	return nil
}

// Connected reports whether the hub is up.
func (p *Port) Connected() bool {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return !p.h.down
}

// Join adds a node and sends every node the new presence list.
func (h *Hub) Join(id nodeid.ID, name string, m Member) {
	h.mu.Lock()
	h.nodes[id] = hubNode{name, m}
	h.mu.Unlock()
	h.announce()
}

// Leave removes a node and sends the others the new presence list.
func (h *Hub) Leave(id nodeid.ID) {
	h.mu.Lock()
	delete(h.nodes, id)
	h.mu.Unlock()
	h.announce()
}

// SetDown stops (true) or resumes relaying; while down, Ports are not
// connected, as with a rendezvous that is gone.
func (h *Hub) SetDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
	if !down {
		h.announce()
	}
}

func (h *Hub) announce() {
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		return
	}
	all := make([]overlay.PeerInfo, 0, len(h.nodes))
	members := make([]Member, 0, len(h.nodes))
	for id, n := range h.nodes {
		all = append(all, overlay.PeerInfo{ID: id, Name: n.name})
		members = append(members, n.m)
	}
	h.mu.Unlock()
	for _, m := range members {
		m.OnPeers(all) // the manager leaves itself out
	}
}
