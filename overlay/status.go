package overlay

import (
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
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
				TxPackets: l.stats.txPackets.Load(), TxBytes: l.stats.txBytes.Load(),
				RxPackets: l.stats.rxPackets.Load(), RxBytes: l.stats.rxBytes.Load(), Dropped: l.stats.dropped.Load(),
			}
			if l.localCand != nil {
				ps.Local = net.JoinHostPort(l.localCand.Address(), strconv.Itoa(l.localCand.Port()))
				ps.Remote = l.remoteAddr.String()
			}
			if l.state == stateUp {
				ps.Age = control.Duration(now.Sub(l.upAt).Truncate(time.Second))
				if st, ok := l.agent.GetSelectedCandidatePairStats(); ok {
					ps.RTT = control.Duration(time.Duration(st.CurrentRoundTripTime * float64(time.Second)))
				}
			} else {
				ps.Age = control.Duration(now.Sub(l.started).Truncate(time.Second))
			}
			out.Links = append(out.Links, ps)
		}
	})
	sort.Slice(out.Links, func(i, j int) bool { return out.Links[i].Name < out.Links[j].Name })
	c := &m.counters
	out.Drops = map[string]uint64{
		"bad_signal": c.badSignal.Load(), "unknown_source": c.unknownSource.Load(), "auth_failed": c.authFailed.Load(),
		"replayed": c.replayed.Load(), "not_data": c.notData.Load(), "no_path": c.noPath.Load(), "bad_length": c.tooLong.Load(), "no_local_member": c.noMember.Load(),
		"bad_route": c.badRoute.Load(), "no_route": c.noRoute.Load(), "ttl_expired": c.expired.Load(), "bad_control": c.badControl.Load(),
	}
	out.Routed = map[string]uint64{"sent": c.routedSent.Load(), "forwarded": c.routedForwarded.Load(), "delivered": c.routedDelivered.Load()}
	out.MACs = m.macs.size()
	return out
}
