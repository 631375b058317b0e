package dataplane

// Flooded control messages: the last resort for a control message whose
// destination neither greedy routing nor a relay reaches (a hole in the
// ring that no neighbour bridges, e.g. a node whose one successor left
// while the rendezvous is down: it must signal a link to the next node,
// but every link it has leads away from it).
//
//	origin:   route header {Flood, Control} + flood ID (8 bytes) + message ─► every up link
//	receiver: seen (src, ID)? drop (flood_dup)
//	          for us?           deliver the message
//	          linked to dst?    pass it on to dst only
//	          else              pass it on to every up link but the one it came on
//
// The IDs seen are kept in a bounded FIFO; the TTL bounds what an
// evicted ID lets through again. Frames are never flooded.

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// floodIDLen is the flood ID in front of a flooded message.
const floodIDLen = 8

// maxFloodsSeen bounds the flood IDs remembered (FIFO).
const maxFloodsSeen = 4096

type floodKey struct {
	src nodeid.ID
	id  uint64
}

// floods remembers the floods seen and numbers this node's own.
type floods struct {
	next atomic.Uint64 // this node's next flood ID

	mu   sync.Mutex // guards the fields below
	seen map[floodKey]struct{}
	fifo [maxFloodsSeen]floodKey
	head int
}

func (f *floods) init() {
	var b [8]byte
	rand.Read(b[:])
	f.next.Store(binary.BigEndian.Uint64(b[:]))
	f.seen = make(map[floodKey]struct{}, maxFloodsSeen)
}

// first records (src, id) and reports whether it is new.
func (f *floods) first(src nodeid.ID, id uint64) bool {
	k := floodKey{src, id}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.seen[k]; dup {
		return false
	}
	if old := f.fifo[f.head]; len(f.seen) >= maxFloodsSeen {
		delete(f.seen, old)
	}
	f.fifo[f.head] = k
	f.head = (f.head + 1) % maxFloodsSeen
	f.seen[k] = struct{}{}
	return true
}

// floodTo sends control message payload toward id by flooding; false when
// no link is up.
func (p *Plane) floodTo(s *scratch, v *View, id nodeid.ID, payload []byte) bool {
	if len(v.up) == 0 {
		return false
	}
	fid := p.floods.next.Add(1)
	p.floods.first(p.self, fid)
	msg := binary.BigEndian.AppendUint64(make([]byte, 0, floodIDLen+len(payload)), fid)
	msg = append(msg, payload...)
	h := topology.Route{Src: p.self, Dst: id, TTL: topology.HopLimit, Control: true, Flood: true}
	for _, peer := range v.up {
		if pa := peer.path.Load(); pa != nil {
			p.sealRouted(s, peer, pa, &h, msg)
		}
	}
	p.counters.flooded.Add(1)
	return true
}

// flooded handles a flooded control message (header h, msg = flood ID +
// message) that came from peer.
func (p *Plane) flooded(s *scratch, v *View, from *Peer, h topology.Route, msg []byte) {
	if len(msg) < floodIDLen {
		p.counters.badRoute.Add(1)
		return
	}
	if !p.floods.first(h.Src, binary.BigEndian.Uint64(msg)) {
		p.counters.floodDup.Add(1)
		return
	}
	if h.Dst == p.self {
		p.counters.routedDelivered.Add(1)
		p.control(h.Src, msg[floodIDLen:], false, false, nil)
		return
	}
	if h.TTL <= 1 {
		p.counters.expired.Add(1)
		return
	}
	h.TTL--
	if peer, pa := v.path(h.Dst); peer != nil {
		p.sealRouted(s, peer, pa, &h, msg)
		p.counters.routedForwarded.Add(1)
		return
	}
	for _, peer := range v.up {
		if peer == from {
			continue
		}
		if pa := peer.path.Load(); pa != nil {
			p.sealRouted(s, peer, pa, &h, msg)
		}
	}
	p.counters.routedForwarded.Add(1)
}
