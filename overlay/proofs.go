package overlay

// Link proofs (control kind 18, trust.LinkProof): the ring takes a peer's
// claim of a link to a node as a way toward that node (lookahead, relays)
// only with that node's signature on it, so a member cannot attract
// routed traffic by claiming links it does not have.
//
//	every trust.ProofEvery, and soon after a link comes up or a proof arrives:
//	  to each linked peer X:  [18, 0, proof "linked to X", signed here]     X holds it
//	  to each linked peer Q:  [18, 1, n, the proofs held]                   what others signed of their links here
//	from X, direct:  [18, 0, proof]   signed by X, for this node: held (the latest per X)
//	from P, direct:  [18, 1, n, ...]  each signed by some node about P: P's proven links, replacing the last
//
// A link that went down keeps its proof until the proof ends
// (trust.ProofFor): what a former neighbour can claim is bounded by it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
)

const (
	proofMine = 0 // a proof of the sender's link to the receiver
	proofHeld = 1 // the proofs the sender holds of others' links to it
	// maxProofs bounds the proofs in one message: a node's links.
	maxProofs = 64
)

// proofs is link control's proof state (loop only).
type proofs struct {
	prover *trust.Signer
	held   map[nodeid.ID][]byte                  // linked X → X's proof of its link to this node
	proven map[nodeid.ID]map[nodeid.ID]time.Time // linked P → nodes whose proofs P showed, until
	// pending: proofs P showed whose signer's certificate was not known
	// yet (asked of the signer through P); checked again once it is,
	// until pendingFor has passed.
	pending map[nodeid.ID]pendingProofs
	next    time.Time // next round of sending
}

type pendingProofs struct {
	proofs [][]byte
	until  time.Time
}

// pendingFor is how long proofs wait for their signers' certificates:
// a hello's round trip, with margin; the next round shows them again.
const pendingFor = 10 * time.Second

// proven answers topology.RingConfig.Proven (on the loop).
func (m *Manager) proven(peer, id nodeid.ID) bool {
	until, ok := m.proofs.proven[peer][id]
	return ok && time.Now().Before(until)
}

// onProofMessage checks a proof message on a reader goroutine (the
// signatures are verified here, not on the loop) and posts what holds.
func (m *Manager) onProofMessage(from nodeid.ID, payload []byte, direct bool) error {
	if !direct || len(payload) < 2 {
		return fmt.Errorf("%w: routed or empty", ErrBadProof)
	}
	dir := m.cfg.Data.Directory()
	switch payload[1] {
	case proofMine:
		lp, err := dir.CheckLinkProof(payload[2:])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadProof, err)
		}
		if lp.Signer != from || lp.Peer != m.self {
			return fmt.Errorf("%w: a proof of %s's link to %s from %s", ErrBadProof, lp.Signer.Short(), lp.Peer.Short(), from.Short())
		}
		proof := slices.Clone(payload[2:])
		m.post(func() {
			if m.up[from] != nil {
				if m.proofs.held[from] == nil {
					m.soon() // a new neighbour: tell the others at once
				}
				m.proofs.held[from] = proof
			}
		})
	case proofHeld:
		if len(payload) < 3 || int(payload[2]) > maxProofs || len(payload) != 3+int(payload[2])*trust.ProofLen {
			return fmt.Errorf("%w: %d bytes", ErrBadProof, len(payload))
		}
		claims := make(map[nodeid.ID]time.Time, payload[2])
		bad, unknown := 0, 0
		var waiting [][]byte
		for b := payload[3:]; len(b) > 0; b = b[trust.ProofLen:] {
			lp, err := dir.CheckLinkProof(b[:trust.ProofLen])
			switch {
			case errors.Is(err, trust.ErrUnknownOrigin):
				// Not checkable yet: ask the signer for its certificate,
				// through from (which, if the proof is real, links it:
				// there may be no other way to it yet), and check the
				// proof again once it is here.
				unknown++
				m.cfg.Data.AskCertificateVia(nodeid.ID(b[1:33]), from)
				waiting = append(waiting, slices.Clone(b[:trust.ProofLen]))
			case err != nil || lp.Peer != from || lp.Signer == m.self:
				bad++ // forged, over, or not about from
			default:
				claims[lp.Signer] = lp.Until
			}
		}
		m.proofRefused.Add(uint64(bad))
		m.proofUnknown.Add(uint64(unknown))
		m.post(func() {
			if m.up[from] != nil {
				m.proofs.proven[from] = claims
				if len(waiting) > 0 {
					m.proofs.pending[from] = pendingProofs{waiting, time.Now().Add(pendingFor)}
				} else {
					delete(m.proofs.pending, from)
				}
				m.ring.Reprove()
			}
		})
	default:
		return fmt.Errorf("%w: type %d", ErrBadProof, payload[1])
	}
	return nil
}

// soon brings the next round of proofs forward to within a second.
func (m *Manager) soon() {
	if at := time.Now().Add(time.Second); m.proofs.next.After(at) {
		m.proofs.next = at
	}
}

// sendProofs runs a round when it is due: each linked peer gets this
// node's proof of the link and the proofs held; proofs that ended are
// forgotten.
func (m *Manager) sendProofs(now time.Time) {
	if now.Before(m.proofs.next) || m.proofs.prover == nil {
		return
	}
	m.proofs.next = now.Add(trust.ProofEvery)
	for id, p := range m.proofs.held {
		if m.up[id] == nil || !time.Unix(int64(binary.BigEndian.Uint64(p[65:73])), 0).After(now) {
			delete(m.proofs.held, id)
		}
	}
	changed := false
	for p, claims := range m.proofs.proven {
		if m.up[p] == nil {
			delete(m.proofs.proven, p)
			changed = true
			continue
		}
		for id, until := range claims {
			if !now.Before(until) {
				delete(claims, id)
				changed = true
			}
		}
	}
	if changed {
		m.ring.Reprove()
	}
	for id := range m.up {
		proof, err := m.proofs.prover.ProveLink(id)
		if err != nil {
			m.log.Error("link proof not made", "err", err)
			return
		}
		msg := append([]byte{dataplane.KindProof, proofMine}, proof...)
		held := []byte{dataplane.KindProof, proofHeld, 0}
		for signer, p := range m.proofs.held {
			if signer != id && held[2] < maxProofs {
				held = append(held, p...)
				held[2]++
			}
		}
		for _, b := range [][]byte{msg, held} {
			if err := m.cfg.Data.SendControl(id, b); err != nil {
				m.log.Debug("link proofs not sent", "to", m.nameOf(id), "err", err)
			}
		}
	}
}

// checkPending checks the proofs that waited for their signers'
// certificates, those whose certificate has arrived (on the loop, every
// tick; a signature check each, only once the certificate is known).
func (m *Manager) checkPending(now time.Time) {
	dir := m.cfg.Data.Directory()
	for from, pp := range m.proofs.pending {
		if m.up[from] == nil || !now.Before(pp.until) {
			delete(m.proofs.pending, from)
			continue
		}
		left := pp.proofs[:0]
		for _, b := range pp.proofs {
			if dir.Get(nodeid.ID(b[1:33])) == nil {
				left = append(left, b)
				continue
			}
			lp, err := dir.CheckLinkProof(b)
			if err != nil || lp.Peer != from || lp.Signer == m.self {
				m.proofRefused.Add(1)
				continue
			}
			if m.proofs.proven[from] == nil {
				m.proofs.proven[from] = map[nodeid.ID]time.Time{}
			}
			m.proofs.proven[from][lp.Signer] = lp.Until
			m.ring.Reprove()
		}
		if len(left) == 0 {
			delete(m.proofs.pending, from)
		} else {
			pp.proofs = left
			m.proofs.pending[from] = pp
		}
	}
}
