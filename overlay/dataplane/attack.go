//go:build ipopd_attack

package dataplane

// The attacker's primitives, for the malicious-member tests with real
// processes (deploy/e2e/attack_test.go): a member that builds packets
// the honest code never sends. Only in binaries built with the
// ipopd_attack tag (deploy/lab builds ipopd-attacker so); never in
// ipopd itself.

import (
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// Forge sends payload under route header h (any source, destination and
// flags) over the link to via.
func (p *Plane) Forge(via nodeid.ID, h topology.Route, payload []byte) error {
	v := p.view.Load()
	peer, pa := v.path(via)
	if peer == nil {
		return ErrNoRoute
	}
	var s scratch
	p.sealRouted(&s, peer, pa, &h, payload)
	p.drain(&s)
	return nil
}

// ForgeDirect sends payload with wire flags over the link to via, not
// routed.
func (p *Plane) ForgeDirect(via nodeid.ID, flags byte, payload []byte) error {
	v := p.view.Load()
	peer, pa := v.path(via)
	if peer == nil {
		return ErrNoRoute
	}
	var s scratch
	p.seal(&s, peer, pa, flags, payload)
	p.drain(&s)
	return nil
}

// ForgeBroadcast sends payload as a ring broadcast from src (the header
// says so; the envelope inside is whatever the caller made).
func (p *Plane) ForgeBroadcast(src nodeid.ID, control bool, payload []byte) {
	v := p.view.Load()
	if v.routes == nil {
		return
	}
	var s scratch
	p.fanout(&s, v, topology.Route{Src: src, Dst: p.self, TTL: topology.HopLimit, Broadcast: true, Control: control}, payload)
	p.drain(&s)
}

// SealFor seals payload end to end for node to as this node would
// (flags as in a routed packet's sealed payload).
func (p *Plane) SealFor(to nodeid.ID, flags byte, payload []byte) ([]byte, error) {
	cert := p.cfg.Directory.Peer(to)
	if cert == nil {
		return nil, ErrNoRoute
	}
	return p.sealE2E(nil, to, cert, flags, payload)
}
