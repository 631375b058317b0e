// Package lab runs real ipopd processes in the namespace testbed: it builds
// the binaries, makes a network CA and node certificates with the real
// ipopctl, writes each node's config, starts ipopd inside a namespace and
// talks to it through ipopctl. The end-to-end tests and the demo share it.
package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/overlay/control"
)

// Bins are paths to freshly built binaries.
type Bins struct {
	Ipopd, Ipopctl, Rendezvous string
	// Attacker is ipopd built with the ipopd_attack tag: a member that
	// attacks on request (overlay/node/attack.go), for the
	// malicious-member tests.
	Attacker string
}

var (
	buildOnce sync.Once
	buildDir  string
	bins      Bins
	buildErr  error
)

// Build compiles cmd/ipopd and cmd/ipopctl once per process (the Go build
// cache makes later processes cheap) and returns their paths.
func Build() (Bins, error) {
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		removeStaleBuilds()
		if buildDir, err = os.MkdirTemp("", fmt.Sprintf("ipopd-bin-%d-", os.Getpid())); err != nil {
			buildErr = err
			return
		}
		bins = Bins{Ipopd: filepath.Join(buildDir, "ipopd"), Ipopctl: filepath.Join(buildDir, "ipopctl"),
			Rendezvous: filepath.Join(buildDir, "ipop-rendezvous"), Attacker: filepath.Join(buildDir, "ipopd-attacker")}
		for _, b := range []struct{ bin, pkg, tags string }{{bins.Ipopd, "./cmd/ipopd", ""}, {bins.Ipopctl, "./cmd/ipopctl", ""},
			{bins.Rendezvous, "./cmd/ipop-rendezvous", ""}, {bins.Attacker, "./cmd/ipopd", "ipopd_attack"}} {
			bin, pkg := b.bin, b.pkg
			cmd := exec.Command("go", "build", "-tags="+b.tags, "-o", bin, pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("lab: go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	return bins, buildErr
}

// removeStaleBuilds removes the binary directories of processes that have
// exited: a build directory lives as long as the process that made it, and
// nothing runs at a test binary's exit to remove it.
func removeStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ipopd-bin-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "ipopd-bin-%d-", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("lab: not inside the ipopd module (go env GOMOD: %v)", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Lab is one overlay network (one CA) inside a testbed.
type Lab struct {
	TB      *netns.Testbed
	Bins    Bins
	Network string
	CADir   string
}

// New builds the binaries and makes the network's CA with `ipopctl ca init`.
func New(tb *netns.Testbed, network string) (*Lab, error) {
	b, err := Build()
	if err != nil {
		return nil, err
	}
	// A fresh directory per lab: two labs may share a network name (a
	// foreign CA for the same network is a test case).
	parent, err := os.MkdirTemp(tb.Dir(), "ca-"+network+"-")
	if err != nil {
		return nil, err
	}
	l := &Lab{TB: tb, Bins: b, Network: network, CADir: filepath.Join(parent, "ca")}
	if _, err := l.ctl("ca", "init", "--network", network, "--out", l.CADir); err != nil {
		return nil, err
	}
	return l, nil
}

// ctl runs ipopctl in the root namespace (certificate work touches no network).
func (l *Lab) ctl(args ...string) (string, error) {
	out, err := exec.Command(l.Bins.Ipopctl, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ipopctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// IssueCert issues NAME.crt/NAME.key into dir with `ipopctl cert issue`.
func (l *Lab) IssueCert(dir, name string, ips ...string) (crt, key string, err error) {
	return l.issue(dir, name, false, 0, ips...)
}

// IssueRendezvousCert issues the certificate of a rendezvous (with its
// role).
func (l *Lab) IssueRendezvousCert(dir, name string) (crt, key string, err error) {
	return l.issue(dir, name, true, 0)
}

// issue runs ipopctl cert issue; valid 0 is its default validity.
func (l *Lab) issue(dir, name string, rendezvous bool, valid time.Duration, ips ...string) (crt, key string, err error) {
	args := []string{"cert", "issue", "--ca", l.CADir, "--name", name, "--out", dir}
	if valid > 0 {
		args = append(args, "--valid", valid.String())
	}
	if rendezvous {
		args = append(args, "--rendezvous")
	}
	for _, ip := range ips {
		args = append(args, "--ip", ip)
	}
	if _, err := l.ctl(args...); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), nil
}

// Revoke adds the node of certificate crt to the network's revocation
// list with `ipopctl ca revoke` and returns the list's path.
func (l *Lab) Revoke(crt string) (string, error) {
	if _, err := l.ctl("ca", "revoke", "--ca", l.CADir, "--cert", crt); err != nil {
		return "", err
	}
	return filepath.Join(l.CADir, "revoked.pem"), nil
}

// Cert is the path of the node's certificate.
func (n *Node) Cert() string { return filepath.Join(n.Dir, n.Name+".crt") }

// Spec describes one node. Zero fields take ipopd's defaults.
type Spec struct {
	Name     string
	Address  string // tap.address, e.g. 10.254.0.1/16
	Address6 string // tap.address6
	MTU      int
	Mode     string // host | switch
	Bridge   string
	TAPName  string // default ipop0
	// Config holds extra top-level keys, merged over the generated ones.
	Config map[string]any
	// CertIPs overrides the addresses the certificate allows (default: the
	// node's own addresses as /32 and /128).
	CertIPs []string
	Env     []string
	// Rendezvous, when set, is the node's rendezvous (config key rendezvous).
	Rendezvous *Rendezvous
	// Valid, when set, is how long its certificate is valid (ipopctl cert
	// issue --valid).
	Valid time.Duration
	// Attacker runs the ipopd-attacker build (Bins.Attacker) instead of
	// ipopd; its attack API is at Socket + ".attack".
	Attacker bool
}

// Node is a running ipopd.
type Node struct {
	Spec
	Host   *netns.Host
	Proc   *netns.Proc
	Dir    string
	File   string // config file
	Socket string
	lab    *Lab
}

// Config writes the node's certificate and config file and returns the node,
// not yet started.
func (l *Lab) Config(h *netns.Host, s Spec) (*Node, error) {
	dir := filepath.Join(l.TB.Dir(), "node-"+s.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ips := s.CertIPs
	if ips == nil {
		for _, a := range []string{s.Address, s.Address6} {
			if a != "" {
				ip, _, _ := strings.Cut(a, "/")
				bits := "/32"
				if strings.Contains(ip, ":") {
					bits = "/128"
				}
				ips = append(ips, ip+bits)
			}
		}
	}
	crt, key, err := l.issue(dir, s.Name, false, s.Valid, ips...)
	if err != nil {
		return nil, err
	}
	n := &Node{Spec: s, Host: h, Dir: dir, lab: l, File: filepath.Join(dir, "ipopd.yaml"), Socket: filepath.Join(dir, "ipopd.sock")}
	tapCfg := map[string]any{"name": or(s.TAPName, "ipop0"), "mode": or(s.Mode, "host")}
	for k, v := range map[string]string{"address": s.Address, "address6": s.Address6, "bridge": s.Bridge} {
		if v != "" {
			tapCfg[k] = v
		}
	}
	if s.MTU != 0 {
		tapCfg["mtu"] = s.MTU
	}
	cfg := map[string]any{
		"network": l.Network,
		"node":    map[string]any{"name": s.Name, "cert": crt, "key": key, "ca": filepath.Join(l.CADir, "ca.crt")},
		"tap":     tapCfg,
		"control": map[string]any{"socket": n.Socket},
		"log":     map[string]any{"level": "debug"},
	}
	if s.Rendezvous != nil {
		cfg["rendezvous"] = []string{s.Rendezvous.Addr}
	}
	for k, v := range s.Config {
		cfg[k] = v
	}
	// JSON is YAML, and needs no YAML library here.
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return n, os.WriteFile(n.File, b, 0o600)
}

// Start writes the node's files, starts ipopd in h and waits until it
// answers `ipopctl status`.
func (l *Lab) Start(h *netns.Host, s Spec) (*Node, error) {
	n, err := l.Config(h, s)
	if err != nil {
		return nil, err
	}
	return n, n.Start()
}

// Start starts (or restarts) the node's ipopd and waits until it answers.
func (n *Node) Start() error {
	bin := n.lab.Bins.Ipopd
	if n.Attacker {
		bin = n.lab.Bins.Attacker
	}
	p, err := n.Host.Start("ipopd-"+n.Name, n.Env, bin, "--config", n.File)
	if err != nil {
		return err
	}
	n.Proc = p
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := n.Status(); err == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("lab: ipopd %s exited (code %d) before answering:\n%s", n.Name, p.ExitCode(), p.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: ipopd %s did not answer within 15s:\n%s", n.Name, p.Log())
		}
	}
}

// Ctl runs ipopctl against this node, inside its namespace.
func (n *Node) Ctl(args ...string) (string, error) {
	return n.Host.Run(append([]string{n.lab.Bins.Ipopctl}, append(args, "--socket", n.Socket)...)...)
}

// Status is `ipopctl status --json`, decoded.
func (n *Node) Status() (*control.Status, error) {
	out, err := n.Ctl("status", "--json")
	if err != nil {
		return nil, err
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("lab: ipopctl status --json: %v\n%s", err, out)
	}
	return &st, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Peers is `ipopctl peers --json`, decoded.
func (n *Node) Peers() (*control.Peers, error) {
	out, err := n.Ctl("peers", "--json")
	if err != nil {
		return nil, err
	}
	var p control.Peers
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, fmt.Errorf("lab: ipopctl peers --json: %v\n%s", err, out)
	}
	return &p, nil
}

// WaitUp waits until the node has links up to each of the named peers.
func (n *Node) WaitUp(timeout time.Duration, peers ...string) (*control.Peers, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := n.Peers()
		if err == nil {
			up := map[string]bool{}
			for _, l := range p.Links {
				if l.State == "up" {
					up[l.Name] = true
				}
			}
			all := true
			for _, name := range peers {
				all = all && up[name]
			}
			if all {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("lab: %s: links to %v not up within %s (peers: %+v, err %v)", n.Name, peers, timeout, p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Addr4 is the node's overlay IPv4 address without the prefix length.
func (n *Node) Addr4() string {
	ip, _, _ := strings.Cut(n.Address, "/")
	return ip
}

// Ping runs the real ping in the node's namespace: count echoes, 200 ms
// apart, each waiting up to 2 s.
func (n *Node) Ping(dst string, count int) (string, error) {
	return n.Host.Run("ping", "-n", "-q", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", dst)
}
