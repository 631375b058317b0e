package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v2"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/signal"
)

// testDir holds a network's CA, a rendezvous certificate, a node
// certificate (alpha), and a certificate of a foreign CA (eve).
func testDir(t *testing.T) (dir string, ca *identity.CA) {
	t.Helper()
	dir = t.TempDir()
	ca, err := identity.InitCA("demo", filepath.Join(dir, "ca"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rendezvous", "alpha"} {
		role := ""
		if name == "rendezvous" {
			role = identity.RoleRendezvous
		}
		if _, _, _, err := identity.IssueToDirRole(filepath.Join(dir, "ca"), name, nil, role, time.Hour, dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := identity.InitCA("demo", filepath.Join(dir, "other"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := identity.IssueToDir(filepath.Join(dir, "other"), "eve", nil, time.Hour, dir); err != nil {
		t.Fatal(err)
	}
	return dir, ca
}

func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	file := filepath.Join(dir, "rendezvous.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// goodConfig listens on loopback ports that were free a moment ago: the
// config contract has no port 0.
func goodConfig(t *testing.T) (yaml, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	turnAddr := pc.LocalAddr().String()
	pc.Close()
	return fmt.Sprintf(`network: demo
cert: rendezvous.crt
key: rendezvous.key
ca: ca/ca.crt
listen: %q
turn: {listen: %q, relay_ip: 127.0.0.1, secret: s3cret}
log: {level: debug}
`, addr, turnAddr), addr
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start-up failures print one line naming the problem and exit 1; usage
// errors exit 2.
func TestBadConfig(t *testing.T) {
	dir, _ := testDir(t)
	good, addr := goodConfig(t)
	for _, tc := range []struct {
		name, yaml string
		args       []string
		code       int
		want       string // substring of the one line
	}{
		{"bad listen", strings.Replace(good, addr, "nowhere", 1), nil, 1, "listen"},
		{"unknown key", good + "lisen: x\n", nil, 1, `did you mean "listen"`},
		{"foreign cert", strings.NewReplacer("rendezvous.crt", "eve.crt", "rendezvous.key", "eve.key").Replace(good), nil, 1, "wrong CA"},
		{"wrong network", strings.Replace(good, "network: demo", "network: other", 1), nil, 1, `config network is "other"`},
		{"key of another cert", strings.Replace(good, "rendezvous.key", "alpha.key", 1), nil, 1, "does not match"},
		{"node certificate", strings.NewReplacer("rendezvous.crt", "alpha.crt", "rendezvous.key", "alpha.key").Replace(good), nil, 1, "lacks the rendezvous role"},
		{"missing file", "", []string{"--config", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{"bad flag", good, []string{"--bogus"}, 2, "--bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"--config", writeConfig(t, dir, tc.yaml)}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			out := stderr.String()
			if code != tc.code || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ipop-rendezvous: ") || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and one line containing %q", code, out, tc.code, tc.want)
			}
		})
	}
}

// The built binary: exit status and the one line, end to end.
func TestBinaryBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, _ := testDir(t)
	bin := filepath.Join(t.TempDir(), "ipop-rendezvous")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--config", writeConfig(t, dir, "network: demo\nlisten: 1\n"))
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("err %v, stderr:\n%s\nwant exit status 1 and one line", err, stderr.String())
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "ipop-rendezvous ") {
		t.Errorf("--version: %q, %v", out, err)
	}
}

// With a good config the server welcomes a node with STUN and time-limited
// TURN credentials, and stops cleanly when its context ends.
func TestServesClient(t *testing.T) {
	dir, ca := testDir(t)
	yaml, addr := goodConfig(t)
	metricsAddr := freePort(t)
	yaml += fmt.Sprintf("metrics: {listen: %q}\n", metricsAddr)
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"--config", writeConfig(t, dir, yaml)}, &bytes.Buffer{}, stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), `msg="signaling listening" addr=`+addr) {
		if time.Now().After(deadline) || len(exit) > 0 {
			t.Fatalf("not listening on %s; stderr:\n%s", addr, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	alpha, err := identity.LoadNode(filepath.Join(dir, "alpha.crt"), filepath.Join(dir, "alpha.key"))
	if err != nil {
		t.Fatal(err)
	}
	type welcome struct {
		stun []string
		turn []iceserver.TURN
	}
	got := make(chan welcome, 1)
	c := signal.NewClient(signal.ClientConfig{
		Servers: []string{addr}, Identity: alpha, CA: ca.Cert, Network: "demo",
		OnWelcome: func(stun []string, turn []iceserver.TURN) { got <- welcome{stun, turn} },
	})
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	select {
	case w := <-got:
		if len(w.stun) != 1 || !regexp.MustCompile(`^stun:127\.0\.0\.1:\d+$`).MatchString(w.stun[0]) {
			t.Errorf("STUN %q", w.stun)
		}
		if len(w.turn) != 1 || !strings.HasSuffix(w.turn[0].Username, ":alpha") ||
			!strings.HasSuffix(w.turn[0].URL, "?transport=udp") || w.turn[0].Credential == "" {
			t.Fatalf("TURN %+v", w.turn)
		}
		allocate(t, w.turn[0])
	case <-time.After(10 * time.Second):
		t.Fatalf("no welcome; stderr:\n%s", stderr.String())
	}
	// The metrics show the node and the refusal counters. The welcome
	// may come before the session counts among the nodes: poll a moment.
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "ipop_rendezvous_nodes 1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"ipop_rendezvous_nodes 1", `ipop_rendezvous_refused_total{reason="relay_rate_limited"} 0`,
		`ipop_rendezvous_refused_total{reason="turn_peer"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	ccancel()
	<-cdone

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after stop; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// allocate proves a welcome's TURN credentials work on the built-in server.
func allocate(t *testing.T, cred iceserver.TURN) {
	t.Helper()
	server := strings.TrimSuffix(strings.TrimPrefix(cred.URL, "turn:"), "?transport=udp")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server, Conn: pc,
		Username: cred.Username, Password: cred.Credential, Realm: "ipopd",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("TURN allocation with the welcome's credentials: %v", err)
	}
	relay.Close()
}
