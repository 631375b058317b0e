package overlay

import (
	"maps"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Peers reports every link, as `ipopctl peers` shows them. It runs on the
// loop, so it sees a consistent state.
func (m *Manager) Peers() control.Peers {
	var out control.Peers
	m.call(func() {
		now := time.Now()
		succ, chords := m.ring.Desired(now)
		od := m.od.Links()
		for _, l := range m.links {
			ps := control.PeerStatus{
				Name: l.peerName, NodeID: l.peer.String(), State: l.state.String(), Initiator: l.initiator,
				Role: m.role(l.peer, succ, chords, od),
				Path: l.pathType(), Reason: l.downReason,
				TxPackets: l.dp.Stats.TxPackets.Load(), TxBytes: l.dp.Stats.TxBytes.Load(),
				RxPackets: l.dp.Stats.RxPackets.Load(), RxBytes: l.dp.Stats.RxBytes.Load(), Dropped: l.dp.Stats.Dropped.Load(),
			}
			if l.localCand != nil {
				ps.Local = net.JoinHostPort(l.localCand.Address(), strconv.Itoa(l.localCand.Port()))
				ps.Remote = l.remoteAddr.String()
			}
			if p := l.dp.Path(); p != nil {
				ps.KeyGeneration = p.Keys.Generation()
			}
			if l.cert != nil {
				ps.CertNotAfter = l.cert.NotAfter
			}
			if l.state == stateUp {
				q := l.dp.Quality()
				ps.ProbesLost, ps.ProbeRTT, ps.RoutedAround = q.Lost, control.Duration(q.RTT), q.Around
				ps.Age = control.Duration(now.Sub(l.upAt).Truncate(time.Second))
				if st, ok := l.agent.GetSelectedCandidatePairStats(); ok {
					ps.RTT = control.Duration(time.Duration(st.CurrentRoundTripTime * float64(time.Second)))
				}
			} else {
				ps.Age = control.Duration(now.Sub(l.started).Truncate(time.Second))
				if rt := m.view.Routes(); rt != nil {
					if next, _, ok := rt.Route(l.peer); ok {
						ps.Via = m.names[next]
						if ps.Via == "" {
							ps.Via = next.Short()
						}
					}
				}
			}
			out.Links = append(out.Links, ps)
		}
	})
	sort.Slice(out.Links, func(i, j int) bool { return out.Links[i].Name < out.Links[j].Name })
	out.Drops = m.Drops()
	out.Routed = m.cfg.Data.Routed()
	out.MACs = m.cfg.Data.MACs()
	return out
}

// Names returns the names of the nodes this node knows of (from the
// rendezvous and from certificates), by ID.
func (m *Manager) Names() map[nodeid.ID]string {
	out := map[nodeid.ID]string{}
	m.call(func() { maps.Copy(out, m.names) })
	return out
}

// Drops returns every drop counter of the data plane and link control,
// by reason (safe from any goroutine: atomics only).
func (m *Manager) Drops() map[string]uint64 {
	d := m.cfg.Data.Drops()
	d["bad_signal"] = m.badSignal.Load()
	d["offer_over_max_links"] = m.refused.Load()
	d["offer_rate_limited"] = m.offerLimited.Load()
	d["knock_rate_limited"] = m.knockLimited.Load()
	d["neighbors_ignored"] = m.ring.Ignored()
	d["neighbors_unlinked"] = m.neighborsUnlinked.Load() + m.ring.Unlinked()
	d["candidate_refused"] = m.candRefused.Load()
	d["proof_refused"] = m.proofRefused.Load()
	d["proof_signer_unknown"] = m.proofUnknown.Load()
	return d
}
