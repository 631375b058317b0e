package overlay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"

	"github.com/ipopd/ipopd/overlay/identity"
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

// path is what the data path needs to use an up link; it is immutable and
// swapped whole, so readers take no lock.
type path struct {
	sess   *wire.Session
	remote netip.AddrPort // where to send on our socket
	relay  bool           // our side is relayed: send through conn (TURN)
	conn   *ice.Conn
}

// Link is one peer link. Fields above the line belong to the manager's loop;
// the atomics below it are shared with the data path.
type Link struct {
	peer      identity.NodeID
	peerName  string
	initiator bool
	session   uint64
	log       *slog.Logger

	state      linkState
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
	localCand  ice.Candidate
	remoteCand ice.Candidate
	remoteAddr netip.AddrPort                       // selected pair's remote, for DTLS routing
	signaled   map[netip.AddrPort]ice.CandidateType // remote candidates signaling delivered

	// ---- shared with the data path ----
	path  atomic.Pointer[path]
	route atomic.Pointer[dtlsConn] // non-nil while DTLS records are routed here
	stats linkStats
}

type linkStats struct {
	txPackets, txBytes, rxPackets, rxBytes, dropped atomic.Uint64
}

func (l *Link) String() string { return fmt.Sprintf("peer(%s/%s)", l.peerName, l.peer.Short()) }

// pathType names the selected pair as users think of it: relay if either
// side is relayed, srflx if either side is a NAT mapping, else host. A
// peer-reflexive remote is only "the address its checks came from": it is
// what signaling said of that address when signaling said anything, and a
// NAT mapping otherwise.
func (l *Link) pathType() string {
	if l.localCand == nil || l.remoteCand == nil {
		return ""
	}
	remote := l.remoteCand.Type()
	if remote == ice.CandidateTypePeerReflexive {
		remote = ice.CandidateTypeServerReflexive
		if t, ok := l.signaled[l.remoteAddr]; ok {
			remote = t
		}
	}
	t := "host"
	for _, ct := range []ice.CandidateType{l.localCand.Type(), remote} {
		switch ct {
		case ice.CandidateTypeRelay:
			return "relay"
		case ice.CandidateTypeServerReflexive, ice.CandidateTypePeerReflexive:
			t = "srflx"
		}
	}
	return t
}

// dtlsConfig authenticates the peer: its certificate must chain to the
// network CA, name this network, and carry the node ID signaling named.
func dtlsConfig(id *identity.Identity, ca *x509.Certificate, network string, want identity.NodeID) *dtls.Config {
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

// handshake runs DTLS over the ICE conn and derives the data keys. It runs
// in the link's set-up goroutine, not on the loop.
func handshake(ctx context.Context, dc *dtlsConn, cfg *dtls.Config, client bool) (*dtls.Conn, *wire.Session, error) {
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
	ekm, err := state.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLen)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("dtls key export: %w", err)
	}
	sess, err := wire.NewSession(ekm, client)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, sess, nil
}
