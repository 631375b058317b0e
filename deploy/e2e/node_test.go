package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// ipLink is the part of `ip -j addr show` the tests read.
type ipLink struct {
	Name     string   `json:"ifname"`
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	Master   string   `json:"master"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func showLink(h *netns.Host, name string) (*ipLink, error) {
	out, err := h.Run("ip", "-j", "addr", "show", "dev", name)
	if err != nil {
		return nil, err
	}
	var ls []ipLink
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		return nil, fmt.Errorf("ip -j addr show %s: %v: %s", name, err, out)
	}
	return &ls[0], nil
}

func (l *ipLink) addrs() []string {
	var as []string
	for _, a := range l.AddrInfo {
		as = append(as, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	return as
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// eventually polls f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNodeLifecycle: ipopd in a fresh namespace creates and configures its
// TAP, reports it through `ipopctl status`, reads the kernel's own IGMP
// report off the TAP, reloads on SIGHUP, and leaves nothing behind on SIGTERM.
func TestNodeLifecycle(t *testing.T) {
	tb := netns.NewT(t)
	l, err := lab.New(tb, "demo")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tb.AddNamespace("alpha")
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Start(h, lab.Spec{Name: "alpha", Address: "10.254.0.1/16", Address6: "fd54::1/64", MTU: 1300,
		Config: map[string]any{"metrics": map[string]any{"listen": "127.0.0.1:9464"}}})
	if err != nil {
		t.Fatal(err)
	}

	link, err := showLink(h, "ipop0")
	if err != nil {
		t.Fatal(err)
	}
	if link.MTU != 1300 || !has(link.Flags, "UP") || !has(link.addrs(), "10.254.0.1/16") || !has(link.addrs(), "fd54::1/64") {
		t.Fatalf("TAP as the kernel sees it: %+v", link)
	}

	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "alpha" || st.Network != "demo" || len(st.NodeID) != 64 || st.TAP.Name != "ipop0" ||
		st.TAP.Mode != "host" || st.TAP.MTU != 1300 || !has(st.TAP.Addresses, "10.254.0.1/16") || !has(st.TAP.Addresses, "fd54::1/64") {
		t.Fatalf("ipopctl status --json = %+v", st)
	}
	text, err := n.Ctl("status")
	if err != nil || !strings.Contains(text, "alpha") || !strings.Contains(text, "ipop0, host mode") {
		t.Fatalf("ipopctl status: %v\n%s", err, text)
	}

	// The kernel's IGMP report for a group joined on the TAP arrives through
	// ipopd's TAP read path.
	before := st.TAP.RxFrames["igmp"]
	var conn net.PacketConn
	err = h.Do(func() error {
		c, err := net.ListenPacket("udp4", "0.0.0.0:5000")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("ipop0")
		if err != nil {
			c.Close()
			return err
		}
		conn = c
		return ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3)})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, 5*time.Second, "IGMP report counted by ipopd", func() error {
		st, err := n.Status()
		if err != nil {
			return err
		}
		if got := st.TAP.RxFrames["igmp"]; got <= before {
			return fmt.Errorf("rx igmp frames %d, was %d", got, before)
		}
		return nil
	})
	// Prometheus metrics, served inside the node's namespace, say the same.
	err = h.Do(func() error {
		// Dial here: http.Client would dial from another goroutine, whose
		// thread is not in the namespace.
		c, err := net.Dial("tcp", "127.0.0.1:9464")
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Fprint(c, "GET /metrics HTTP/1.0\r\n\r\n")
		body, _ := io.ReadAll(c)
		for _, want := range []string{`ipopd_tap_rx_frames_total{class="igmp"}`, `ipopd_info{name="alpha"`, "ipopd_cert_expiry_timestamp_seconds",
			`ipopd_querier{family="4"} 1`, `ipopd_querier{family="6"} 1`, `ipopd_membership_reports_total{proto="igmp"}`, "ipopd_mcast_local_groups"} {
			if !strings.Contains(string(body), want) {
				return fmt.Errorf("metrics lack %s:\n%s", want, body)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if !strings.Contains(n.Proc.Log(), "membership report or query") {
		t.Errorf("ipopd's debug log shows no IGMP frame:\n%s", n.Proc.Log())
	}

	// SIGHUP: a valid change applies, an invalid file is refused and the
	// node keeps running on the old config.
	cfg, _ := os.ReadFile(n.File)
	os.WriteFile(n.File, []byte(strings.Replace(string(cfg), `"debug"`, `"warn"`, 1)), 0o600)
	n.Proc.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "reload applied", func() error {
		if !strings.Contains(n.Proc.Log(), "log.level=WARN") {
			return fmt.Errorf("no reload line in log")
		}
		return nil
	})
	os.WriteFile(n.File, []byte(strings.Replace(string(cfg), `"mode": "host"`, `"mode": "hub"`, 1)), 0o600)
	n.Proc.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "invalid reload refused", func() error {
		if !strings.Contains(n.Proc.Log(), "reload failed; keeping the running config") {
			return fmt.Errorf("no refusal in log")
		}
		return nil
	})
	if _, err := n.Status(); err != nil {
		t.Fatalf("node not answering after an invalid reload: %v", err)
	}

	// SIGTERM: clean exit, TAP and socket gone.
	if err := n.Proc.Stop(); err != nil {
		t.Fatalf("ipopd exit after SIGTERM: %v\n%s", err, n.Proc.Log())
	}
	if _, err := showLink(h, "ipop0"); err == nil {
		t.Error("TAP ipop0 still exists after SIGTERM")
	}
	if _, err := os.Stat(n.Socket); !os.IsNotExist(err) {
		t.Errorf("control socket still exists after SIGTERM: %v", err)
	}
}

// TestStartupRefusals: ipopd refuses to start, with one clear line and
// nothing left behind, for bad certificates and a missing CAP_NET_ADMIN.
func TestStartupRefusals(t *testing.T) {
	tb := netns.NewT(t)
	l, err := lab.New(tb, "demo")
	if err != nil {
		t.Fatal(err)
	}
	other, err := lab.New(tb, "other")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tb.AddNamespace("refuse")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		lab  *lab.Lab
		spec lab.Spec
		edit func(n *lab.Node) []string // returns the command prefix (e.g. setpriv)
		want string
	}{
		{"address not allowed", l, lab.Spec{Name: "a1", Address: "10.254.0.9/16", CertIPs: []string{"10.254.0.1/32"}}, nil, "does not allow tap.address 10.254.0.9/16"},
		{"other network", other, lab.Spec{Name: "a2", Address: "10.254.0.2/16", Config: map[string]any{"network": "demo"}}, nil, `network "other"`},
		{"wrong CA", other, lab.Spec{Name: "a3", Address: "10.254.0.3/16"}, func(n *lab.Node) []string {
			cfg, _ := os.ReadFile(n.File)
			cfg = []byte(strings.Replace(string(cfg), other.CADir, l.CADir, 1))
			cfg = []byte(strings.Replace(string(cfg), `"network": "other"`, `"network": "demo"`, 1))
			os.WriteFile(n.File, cfg, 0o600)
			return nil
		}, "wrong CA"},
		{"no CAP_NET_ADMIN", l, lab.Spec{Name: "a4", Address: "10.254.0.4/16"}, func(*lab.Node) []string {
			return []string{"setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"}
		}, "CAP_NET_ADMIN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := c.lab.Config(h, c.spec)
			if err != nil {
				t.Fatal(err)
			}
			var prefix []string
			if c.edit != nil {
				prefix = c.edit(n)
			}
			args := append(append([]string{"ip", "netns", "exec", h.NS}, prefix...), l.Bins.Ipopd, "--config", n.File)
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err == nil {
				t.Fatalf("ipopd started; want refusal:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("want one line containing %q, got:\n%s", c.want, out)
			}
			if _, err := showLink(h, "ipop0"); err == nil {
				t.Error("TAP left behind by a refused start")
			}
		})
	}
}
