package nat

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/stun"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// NewAgent builds one ICE agent (one per peer link) on the socket.
//
// Host and server-reflexive candidates share the socket's port through its
// UDP mux (UDPMux and UDPMuxSrflx), so ICE's checks and keepalives travel
// on the same 5-tuple as ipopd's data. Relay candidates come from the TURN
// servers in st.TURN plus extra (e.g. time-limited credentials a rendezvous
// handed out); pion allocates each on a socket of its own, so relayed data
// goes through the agent's ice.Conn (see SelectedPath).
//
// From st, NewAgent uses STUN, TURN, RelayOnly and the timers; interface
// selection was fixed at Listen. Network type is UDP4; mDNS is off.
// The caller owns the agent and must Close it before closing the socket.
func (s *Socket) NewAgent(st Settings, extra []iceserver.TURN, log *slog.Logger) (*ice.Agent, error) {
	if log == nil {
		log = s.log
	}
	st = st.withDefaults()
	urls, err := st.urls(extra)
	if err != nil {
		return nil, err
	}
	types := []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive, ice.CandidateTypeRelay}
	if st.RelayOnly {
		types = []ice.CandidateType{ice.CandidateTypeRelay}
		if !slices.ContainsFunc(urls, isTURN) {
			return nil, ErrNoTURN
		}
	}
	ka, dis, fail := st.KeepaliveInterval, st.DisconnectedTimeout, st.FailedTimeout
	wait := acceptanceWait
	agent, err := ice.NewAgent(&ice.AgentConfig{
		Urls:           urls,
		NetworkTypes:   []ice.NetworkType{ice.NetworkTypeUDP4},
		CandidateTypes: types,
		// Off everywhere: mDNS would multicast on every LAN the node is on
		// and hide host addresses behind names our peers cannot resolve.
		MulticastDNSMode:    ice.MulticastDNSModeDisabled,
		UDPMux:              s.mux,
		UDPMuxSrflx:         s.mux,
		Net:                 s.net,
		InterfaceFilter:     s.rule.allowsName,
		IncludeLoopback:     s.rule.loopback,
		KeepaliveInterval:   &ka,
		DisconnectedTimeout: &dis,
		FailedTimeout:       &fail,
		// pion waits 2 s before it takes a relayed pair (1 s for a
		// peer-reflexive one), in case a better pair succeeds meanwhile.
		// Direct pairs that work succeed in well under that, so every
		// relayed link paid 2 s of set-up for nothing, and a link that
		// loses its TURN server came back only after it.
		RelayAcceptanceMinWait: &wait,
		PrflxAcceptanceMinWait: &wait,
		LoggerFactory:          newPionLogs(log),
	})
	if err != nil {
		return nil, fmt.Errorf("nat: new ICE agent: %w", err)
	}
	return agent, nil
}

// acceptanceWait is how long the controlling agent waits before it
// nominates a relayed or peer-reflexive pair (pion: 2 s and 1 s); as
// long as for a server-reflexive one.
const acceptanceWait = 500 * time.Millisecond

func isTURN(u *stun.URI) bool {
	return u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS
}

// Path is how to reach a connected peer.
type Path struct {
	// Remote is the peer's address on the selected pair: where to send,
	// and the source address its packets arrive from.
	Remote netip.AddrPort
	// Direct is true when the local candidate lives on the shared socket
	// (host or server-reflexive): send with Socket.WriteTo/WriteBatch and
	// receive through the Handler. False means a local relay candidate:
	// the data path must use the agent's ice.Conn (pion's relay socket).
	Direct bool
	// LocalType and RemoteType are the pair's candidate types (status).
	LocalType, RemoteType ice.CandidateType
}

// SelectedPath reports the agent's selected candidate pair as a Path, or
// ErrNotConnected before there is one. Call it again after the agent's
// OnSelectedCandidatePairChange fires.
func SelectedPath(a *ice.Agent) (Path, error) {
	pair, err := a.GetSelectedCandidatePair()
	if err != nil {
		return Path{}, fmt.Errorf("nat: selected pair: %w", err)
	}
	if pair == nil {
		return Path{}, ErrNotConnected
	}
	ip, err := netip.ParseAddr(pair.Remote.Address())
	if err != nil {
		// mDNS is off, so a name here is a peer's .local candidate we never
		// resolve; pion would not have selected it.
		return Path{}, fmt.Errorf("nat: selected remote %q: %w", pair.Remote.Address(), err)
	}
	lt := pair.Local.Type()
	return Path{
		Remote:     netipUnmap(netip.AddrPortFrom(ip, uint16(pair.Remote.Port()))),
		Direct:     lt == ice.CandidateTypeHost || lt == ice.CandidateTypeServerReflexive || lt == ice.CandidateTypePeerReflexive,
		LocalType:  lt,
		RemoteType: pair.Remote.Type(),
	}, nil
}
