package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// Rendezvous is a running ipop-rendezvous (signaling, STUN and TURN).
type Rendezvous struct {
	Host *netns.Host
	Proc *netns.Proc
	Addr string // signaling host:port
	TURN string // STUN/TURN host:port ("" when off)
	// MetricsAddr is its Prometheus endpoint's host:port.
	MetricsAddr string
	File        string
	cfg         map[string]any
	lab         *Lab
}

// Static TURN user every lab rendezvous accepts, and its HMAC secret.
const (
	TURNUser     = "labuser"
	TURNPassword = "labpass"
	TURNSecret   = "lab-turn-secret"
)

// StartRendezvous runs ipop-rendezvous on h (a public host), with STUN and
// TURN on port 3478 when turn is true, and waits until it accepts
// connections.
func (l *Lab) StartRendezvous(h *netns.Host, turn bool) (*Rendezvous, error) {
	dir := filepath.Join(l.TB.Dir(), "rendezvous-"+h.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	crt, key, err := l.IssueRendezvousCert(dir, "rendezvous")
	if err != nil {
		return nil, err
	}
	r := &Rendezvous{Host: h, lab: l, Addr: net.JoinHostPort(h.Addr.String(), "7000"), File: filepath.Join(dir, "rendezvous.yaml"),
		MetricsAddr: net.JoinHostPort(h.Addr.String(), "9300")}
	cfg := map[string]any{
		"network": l.Network, "cert": crt, "key": key, "ca": filepath.Join(l.CADir, "ca.crt"),
		"listen": r.Addr, "log": map[string]any{"level": "debug"}, "metrics": map[string]any{"listen": r.MetricsAddr},
	}
	if turn {
		r.TURN = net.JoinHostPort(h.Addr.String(), "3478")
		cfg["turn"] = map[string]any{"listen": r.TURN, "relay_ip": h.Addr.String(), "realm": "ipopd",
			"users": map[string]string{TURNUser: TURNPassword}, "secret": TURNSecret}
	}
	r.cfg = cfg
	if err := r.write(); err != nil {
		return nil, err
	}
	return r, r.Start()
}

func (r *Rendezvous) write() error {
	b, _ := json.MarshalIndent(r.cfg, "", "  ")
	return os.WriteFile(r.File, b, 0o600)
}

// SetRevoked points the rendezvous at a revocation list (config key
// revoked) and sends it SIGHUP to reload it.
func (r *Rendezvous) SetRevoked(list string) error {
	r.cfg["revoked"] = list
	if err := r.write(); err != nil {
		return err
	}
	return r.Proc.Signal(syscall.SIGHUP)
}

// Start (re)starts the rendezvous process and waits for its listener.
func (r *Rendezvous) Start() error {
	p, err := r.Host.Start("rendezvous", nil, r.lab.Bins.Rendezvous, "--config", r.File)
	if err != nil {
		return err
	}
	r.Proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.Host.Do(func() error {
			c, err := net.DialTimeout("tcp", r.Addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("lab: ipop-rendezvous exited (code %d):\n%s", p.ExitCode(), p.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: ipop-rendezvous not listening on %s within 10s:\n%s", r.Addr, p.Log())
		}
	}
}

// Metrics scrapes the rendezvous's Prometheus endpoint: each sample by
// its name with labels as exposed (`ipop_rendezvous_refused_total{reason="malformed"}`).
func (r *Rendezvous) Metrics() (map[string]float64, error) {
	return Scrape(r.Host, r.MetricsAddr)
}

// Scrape reads a Prometheus endpoint at addr inside h's namespace.
func Scrape(h *netns.Host, addr string) (map[string]float64, error) {
	var body []byte
	err := h.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		body, err = io.ReadAll(c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: scraping %s: %w", addr, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}
