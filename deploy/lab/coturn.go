package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/nat/iceserver"
)

// A Coturn is coturn's turnserver running in a namespace, with one static
// long-term user.
type Coturn struct {
	Proc *netns.Proc
	Addr netip.Addr // where it listens and relays from
	// TURN is how a node's config names it (the `turn:` list).
	TURN iceserver.TURN
}

// StartCoturn starts turnserver on h's address, port 3478 (UDP only: no
// TLS, DTLS or CLI), with user ipop and realm ipopd, relaying on the same
// address. Its pid file and user database live in the testbed's directory. It
// returns once the server says it is up.
func (l *Lab) StartCoturn(h *netns.Host, name string) (*Coturn, error) {
	ip := h.Addr.String()
	dir := filepath.Join(l.TB.Dir(), h.Name+"-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	p, err := h.Start(name, nil, "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--db", filepath.Join(dir, "turndb"),
		"--listening-ip", ip, "--relay-ip", ip, "--listening-port", "3478",
		"--lt-cred-mech", "--user", "ipop:turnpass", "--realm", "ipopd", "--fingerprint",
		"--log-file", "stdout", "--simple-log", "--no-software-attribute", "-V")
	if err != nil {
		return nil, fmt.Errorf("lab: turnserver: %w", err)
	}
	c := &Coturn{Proc: p, Addr: h.Addr, TURN: iceserver.TURN{URL: "turn:" + ip + ":3478?transport=udp", Username: "ipop", Credential: "turnpass"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.Exited():
			return nil, fmt.Errorf("lab: turnserver exited (code %d):\n%s", p.ExitCode(), p.Log())
		default:
		}
		if strings.Contains(p.Log(), "Total General servers") {
			return c, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("lab: turnserver not listening on %s:3478 within 10s:\n%s", ip, p.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
