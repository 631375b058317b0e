package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/signal"
)

// turnTTL is how long the TURN credentials in a welcome stay valid. A
// node gets fresh ones on every reconnect; a day outlives any link set-up
// while keeping a leaked credential short-lived.
const turnTTL = 24 * time.Hour

// rendezvous is the running server: signaling always, STUN/TURN when
// turn.listen is set.
type rendezvous struct {
	log     *slog.Logger
	ca      *x509.Certificate
	network string
	ln      net.Listener
	sig     *signal.Server
	turn    *nat.Server  // nil without turn.listen
	metrics *http.Server // nil without metrics.listen
}

// readRevocations reads and checks a revocation list file.
func readRevocations(file string, ca *x509.Certificate, network string) ([]byte, *identity.Revocations, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	list, err := identity.ParseRevocations(data, ca, network)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, list, nil
}

// reload re-reads the revocation list (SIGHUP); a bad file keeps the one
// in force.
func (r *rendezvous) reload(cfg *config.RendezvousConfig) {
	if cfg.Revoked == "" {
		return
	}
	data, list, err := readRevocations(cfg.Revoked, r.ca, r.network)
	if err != nil {
		r.log.Error("revocation list not reloaded; keeping the one in force", "err", err)
		return
	}
	r.sig.SetRevocations(data, list)
	r.log.Info("revocation list reloaded", "file", cfg.Revoked, "nodes", len(list.Nodes), "seq", list.Seq)
}

// start checks the certificate and opens every socket, so that all a
// person has to fix is reported before anything serves. Errors are one
// line naming the config key.
func start(cfg *config.RendezvousConfig, log *slog.Logger) (*rendezvous, error) {
	id, err := identity.LoadNode(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("cert/key: %w", err)
	}
	ca, err := identity.LoadCACert(cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if err := identity.CheckNode(id, cfg.Cert, ca, cfg.CA, cfg.Network, nil, time.Now()); err != nil {
		return nil, err
	}
	if id.Role != identity.RoleRendezvous {
		return nil, fmt.Errorf("cert: certificate %s lacks the rendezvous role; issue it with ipopctl cert issue --rendezvous (nodes refuse a server without it)", cfg.Cert)
	}
	r := &rendezvous{log: log, ca: ca, network: cfg.Network}
	var revoked []byte
	var list *identity.Revocations
	if cfg.Revoked != "" {
		if revoked, list, err = readRevocations(cfg.Revoked, ca, cfg.Network); err != nil {
			return nil, fmt.Errorf("revoked: %w", err)
		}
	}
	var stun []string
	var turnCreds func(signal.PeerInfo) []iceserver.TURN
	if t := cfg.TURN; t.Listen != "" {
		var allow []netip.Prefix
		for _, p := range t.AllowPeers {
			allow = append(allow, netip.MustParsePrefix(p)) // validated by config
		}
		r.turn, err = nat.NewServer(nat.ServerConfig{
			Listen: t.Listen, RelayIP: t.RelayIP, Realm: t.Realm, Users: t.Users, Secret: t.Secret, Log: log,
			AllowPeers: allow, MaxAllocations: t.MaxAllocations,
		})
		if err != nil {
			return nil, fmt.Errorf("turn: %w", err)
		}
		// Nodes reach the server where relayed traffic leaves from, on the
		// port actually bound (turn.listen may say :0).
		hostPort := net.JoinHostPort(t.RelayIP, strconv.Itoa(r.turn.Addr().(*net.UDPAddr).Port))
		stun = []string{"stun:" + hostPort}
		if t.Secret != "" {
			url, secret := "turn:"+hostPort+"?transport=udp", t.Secret
			turnCreds = func(n signal.PeerInfo) []iceserver.TURN {
				user, pass := nat.EphemeralCredentials(secret, n.Name, turnTTL, time.Now())
				return []iceserver.TURN{{URL: url, Username: user, Credential: pass}}
			}
		}
	}
	if r.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		r.close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	r.sig = signal.NewServer(signal.ServerConfig{
		Identity: id, CA: ca, Network: cfg.Network, STUN: stun, TURN: turnCreds, Log: log,
	})
	if cfg.Metrics.Listen != "" {
		if err := r.listenMetrics(cfg.Metrics.Listen); err != nil {
			r.close()
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
	}
	if list != nil {
		r.sig.SetRevocations(revoked, list)
		log.Info("revocation list loaded", "file", cfg.Revoked, "nodes", len(list.Nodes), "seq", list.Seq)
	}
	log.Info("signaling listening", "addr", r.ln.Addr().String(), "network", cfg.Network,
		"server", id.String(), "stun", stun, "turn_credentials", turnCreds != nil)
	return r, nil
}

// serve runs until ctx ends, then stops everything; a failing listener
// stops everything too.
func (r *rendezvous) serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- r.sig.Serve(r.ln) }()
	var err error
	select {
	case <-ctx.Done():
		r.log.Info("stopping")
	case err = <-done:
		done <- err // Serve has returned; let the wait below see it
	}
	r.close()
	<-done
	return err
}

func (r *rendezvous) close() {
	if r.sig != nil {
		r.sig.Close()
	}
	if r.ln != nil {
		r.ln.Close()
	}
	if r.turn != nil {
		r.turn.Close()
	}
	if r.metrics != nil {
		r.metrics.Close()
	}
}
