package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/tap"
	"github.com/ipopd/ipopd/tap/taptest"
)

// TestNodeInProcess runs a whole node on a fake TAP with no rendezvous: it
// answers the control API, queries on its TAP, turns a host's IGMPv3 report
// into a local membership, and stops cleanly without leaking goroutines.
func TestNodeInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	if _, err := identity.InitCA("test", filepath.Join(dir, "ca"), time.Hour); err != nil {
		t.Fatal(err)
	}
	crt, key, _, err := identity.IssueToDir(filepath.Join(dir, "ca"), "alpha",
		[]netip.Prefix{netip.MustParsePrefix("10.254.0.1/32")}, time.Hour, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Network, cfg.Node = "test", config.NodeConfig{Name: "alpha", Cert: crt, Key: key, CA: filepath.Join(dir, "ca", "ca.crt")}
	cfg.Tap.Address = netip.MustParsePrefix("10.254.0.1/16")
	cfg.Control.Socket = filepath.Join(dir, "ipopd.sock")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	hostMAC := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dev := taptest.New("fake0", 1400, hostMAC, 256)
	n, err := New(cfg, Options{Version: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OpenTAP: func(tap.Config) (tap.Device, error) { return dev, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()

	// The querier's startup query comes out of the TAP.
	select {
	case f := <-dev.Written():
		if tap.Classify(f) != tap.ClassIGMP && tap.Classify(f) != tap.ClassMLD {
			t.Fatalf("first frame written is %v, want a query", tap.Classify(f))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no query written to the TAP")
	}

	report := &igmp.Message{Type: igmp.TypeIGMPv3Report, Records: []igmp.Record{{Type: igmp.ChangeToExcludeMode, Group: netip.MustParseAddr("239.1.2.3")}}}
	frame, err := report.Frame(hostMAC, netip.MustParseAddr("10.254.0.1"), netip.MustParseAddr("224.0.0.22"))
	if err != nil {
		t.Fatal(err)
	}
	dev.Inject(frame)
	client := control.NewClient(cfg.Control.Socket)
	deadline := time.Now().Add(3 * time.Second)
	for {
		g, _, err := client.Groups()
		if err == nil && len(g.Groups) > 0 && g.Groups[0].Group == "239.1.2.3" && g.Groups[0].Local != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("membership not seen: %+v %v", g, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _, err := client.Status(); err != nil || st.Name != "alpha" || st.TAP.RxFrames["igmp"] != 1 {
		t.Errorf("status = %+v, %v", st, err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
