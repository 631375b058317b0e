package overlay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
)

type linkState int

const (
	stateConnecting linkState = iota // signaling and ICE checks
	stateHandshake                   // DTLS
	stateUp
	stateDown // failed or closed; retried after retryAt
)

func (s linkState) String() string {
	return [...]string{"connecting", "handshake", "up", "down"}[s]
}

// Link is one peer link. Its fields belong to the manager's loop; what the
// data plane uses of it (path, handshake routing, counters) is in dp.
type Link struct {
	peer      nodeid.ID
	peerName  string
	initiator bool
	session   uint64
	log       *slog.Logger

	state      linkState
	cert       *identity.Peer // the peer's verified certificate, once up
	remoteBoot uint64
	agent      *ice.Agent
	iceConn    *ice.Conn
	dtls       *dtls.Conn
	dconn      *dtlsConn
	cancel     context.CancelFunc
	started    time.Time
	upAt       time.Time
	downReason string
	answered   bool
	closed     bool      // closed on purpose (not needed), not lost
	lostAt     time.Time // when a link to the peer, up, was lost (not closed): see relink
	heardRing  bool      // a Neighbors arrived on this link
	sigOverlay bool      // set-up signaling goes through the overlay
	localCand  ice.Candidate
	remoteCand ice.Candidate
	remoteAddr netip.AddrPort // selected pair's remote, for DTLS routing
	lastTx     uint64         // TxPackets at the last tick: a keepalive goes when unchanged
	signaled   candTypes      // remote candidates signaling delivered
	remotes    int            // how many (maxRemoteCandidates)
	gathered   candTypes      // our own candidates

	dp *dataplane.Peer // shared with the data plane
}

func (l *Link) String() string { return fmt.Sprintf("peer(%s/%s)", l.peerName, l.peer.Short()) }

// candTypes remembers, per address, the most direct type a candidate at
// that address had: without a NAT a node's srflx candidate is its host
// address, and a peer-reflexive pair is often just a host pair whose checks
// outran signaling.
type candTypes map[netip.AddrPort]ice.CandidateType

func rank(t ice.CandidateType) int {
	switch t {
	case ice.CandidateTypeHost:
		return 0
	case ice.CandidateTypeRelay:
		return 2
	}
	return 1
}

func addrOf(c ice.Candidate) (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(c.Address())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(c.Port())), true
}

func (ct *candTypes) note(c ice.Candidate) {
	a, ok := addrOf(c)
	if !ok {
		return
	}
	if *ct == nil {
		*ct = candTypes{}
	}
	if old, seen := (*ct)[a]; !seen || rank(c.Type()) < rank(old) {
		(*ct)[a] = c.Type()
	}
}

// effective is the most direct type known for c's address; a peer-reflexive
// address nobody signaled is a NAT mapping.
func (ct candTypes) effective(c ice.Candidate) ice.CandidateType {
	t := c.Type()
	if a, ok := addrOf(c); ok {
		if k, seen := ct[a]; seen && rank(k) <= rank(t) {
			return k
		}
	}
	if t == ice.CandidateTypePeerReflexive {
		return ice.CandidateTypeServerReflexive
	}
	return t
}

// pathType names the selected pair as users think of it: relay if either
// side is relayed, srflx if either side is a NAT mapping, else host.
func (l *Link) pathType() string {
	if l.localCand == nil || l.remoteCand == nil {
		return ""
	}
	t := "host"
	for _, ct := range []ice.CandidateType{l.gathered.effective(l.localCand), l.signaled.effective(l.remoteCand)} {
		switch ct {
		case ice.CandidateTypeRelay:
			return "relay"
		case ice.CandidateTypeServerReflexive:
			t = "srflx"
		}
	}
	return t
}

// dtlsConfig authenticates the peer: its certificate must chain to the
// network CA, name this network, and carry the node ID signaling named.
func dtlsConfig(id *identity.Identity, ca *x509.Certificate, network string, want nodeid.ID) *dtls.Config {
	return &dtls.Config{
		Certificates:         []tls.Certificate{id.TLS},
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		ClientAuth:           dtls.RequireAnyClientCert,
		InsecureSkipVerify:   true, // no hostnames: VerifyPeerCertificate decides
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		FlightInterval:       500 * time.Millisecond,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			p, err := identity.VerifyRaw(raw, ca, network, time.Now())
			if err != nil {
				return err
			}
			if p.ID != want {
				return fmt.Errorf("%w: signaling said %s, certificate is %s", ErrPeerID, want.Short(), p)
			}
			return nil
		},
	}
}

// handshake runs DTLS over the ICE conn and derives the link's rotating
// data keys from its root secret. It runs in the link's set-up goroutine,
// not on the loop.
func handshake(ctx context.Context, dc *dtlsConn, cfg *dtls.Config, client bool, rekey time.Duration) (*dtls.Conn, *wire.Keyring, error) {
	var conn *dtls.Conn
	var err error
	if client {
		conn, err = dtls.ClientWithContext(ctx, dc, cfg)
	} else {
		conn, err = dtls.ServerWithContext(ctx, dc, cfg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dtls handshake: %w", err)
	}
	state := conn.ConnectionState()
	root, err := state.ExportKeyingMaterial(wire.RootLabel, nil, wire.RootLen)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("dtls key export: %w", err)
	}
	keys, err := wire.NewKeyring(root, client, rekey, time.Now())
	clear(root)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, keys, nil
}
