package dataplane

// The inside: frames read from the TAP, to the nodes that should get them.
//
//	TAP ──Read(batch)──► per frame: tap.Parse, once ──► count by class
//	   IGMP, MLD ──► Multicast.Membership (the querier)     never data: stop
//	   ARP, NDP ───► Neighbours.Local: answered or suppressed here: stop
//	                                   else on, as broadcast or unicast ▼
//	   unicast ────► MAC table: its node ──► toNode; unknown MAC ▼
//	   multicast ──► Multicast.Route: To (toNode each) | Flood ▼ | Drop
//	   broadcast, unknown unicast ──► flood (a ring broadcast: each node once)
//	──► drain: socket WriteBatch (sendmmsg); relayed links wrote at once
//
// Everything runs on the TAP reader goroutine (ReadTAP), one frame after
// another. It owns the batch buffers and the scratch below and passes them
// down; each stage borrows a frame only until the next Read (the querier
// and the neighbour plane copy what they keep).

import (
	"errors"
	"net"

	"github.com/ipopd/ipopd/tap"
)

// readBatch frames per Read: large enough to amortise a wake-up, small
// enough that a batch of MTU-sized buffers stays in cache.
const readBatch = 64

// inside is the TAP reader's own state.
type inside struct {
	bufs   [][]byte
	sizes  []int
	parsed []tap.Parsed
	s      scratch
}

// ReadTAP reads the TAP and sends what it reads until the TAP is closed
// (then it returns nil) or fails. Run it on one goroutine.
func (p *Plane) ReadTAP() error {
	in := &inside{bufs: make([][]byte, readBatch), sizes: make([]int, readBatch), parsed: make([]tap.Parsed, readBatch)}
	for i := range in.bufs {
		in.bufs[i] = make([]byte, p.maxFrame())
	}
	for {
		k, err := p.cfg.TAP.Read(in.bufs, in.sizes)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		p.tapStats.batches.Add(1)
		p.inside(in, k)
	}
}

// inside handles the first k frames of in's batch.
func (p *Plane) inside(in *inside, k int) {
	v := p.view.Load()
	s := &in.s
	for i := range k {
		f := in.bufs[i][:in.sizes[i]]
		pf := &in.parsed[i]
		*pf = tap.Parse(f)
		p.tapStats.rxFrames[pf.Class].Add(1)
		p.tapStats.rxBytes.Add(uint64(len(f)))
		switch pf.Class {
		case tap.ClassInvalid:
			continue
		case tap.ClassIGMP, tap.ClassMLD:
			p.log.Debug("tap: membership report or query", "class", pf.Class.String(), "len", len(f))
			if p.mcast != nil {
				p.mcast.Membership(f)
			}
			continue
		case tap.ClassARP, tap.ClassNDP:
			if p.neigh != nil && !p.neigh.Local(f) {
				continue // answered here, or a request for a local host
			}
		}
		if len(v.up) == 0 {
			continue
		}
		if s.used >= scratchSlots {
			p.drain(s)
		}
		p.send(s, v, pf, f)
	}
	p.drain(s)
}

// send sends one frame from the TAP where it should go.
func (p *Plane) send(s *scratch, v *View, pf *tap.Parsed, f []byte) {
	if f[0]&1 == 0 { // unicast destination
		if id, ok := p.macs.lookup([6]byte(f[0:6])); ok && p.toNode(s, v, id, 0, f) {
			return
		}
		p.flood(s, v, f, 0) // unknown unicast, like a switch
		return
	}
	action := Flood // broadcast, or no multicast plane
	if pf.Class == tap.ClassMulticast && p.mcast != nil {
		s.targets, action = p.mcast.Route(pf, f, s.targets[:0])
	}
	switch action {
	case Flood:
		p.flood(s, v, f, 0)
	case To:
		for _, id := range s.targets {
			p.toNode(s, v, id, 0, f)
		}
	case Tree, ToRoot:
		p.treeSend(s, v, action, s.targets, f)
	}
}
