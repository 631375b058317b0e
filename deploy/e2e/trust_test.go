package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// nodeWith is overlay.node with a spec to adjust (extra config keys, a
// certificate's validity).
func (o *overlay) nodeWith(t *testing.T, h *netns.Host, name string, i int, adjust func(*lab.Spec)) *lab.Node {
	t.Helper()
	s := lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i), Address6: fmt.Sprintf("fd54::%d/64", i),
		Rendezvous: o.rv, Config: map[string]any{"ice": map[string]any{"port": 4000}}}
	adjust(&s)
	n, err := o.l.Start(h, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func keyGeneration(t *testing.T, n *lab.Node, peer string) uint64 {
	t.Helper()
	return upLinks(t, n)[peer].KeyGeneration
}

// TestRekeyUnderLoad: with trust.rekey_interval 1s, a 1,000 packets/s UDP
// stream (iperf 2) each way crosses at least 5 key changes of each end's
// sending keys and loses nothing.
func TestRekeyUnderLoad(t *testing.T) {
	o := newOverlay(t)
	fast := func(s *lab.Spec) { s.Config["trust"] = map[string]any{"rekey_interval": "1s"} }
	alpha := o.nodeWith(t, o.public(t, "a"), "alpha", 1, fast)
	beta := o.nodeWith(t, o.public(t, "b"), "beta", 2, fast)
	if _, err := alpha.WaitUp(30*time.Second, "beta"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*lab.Node{alpha, beta} {
		if _, err := n.Host.Start("iperf-server", nil, "iperf", "-s", "-u", "-B", n.Addr4()); err != nil {
			t.Fatal(err)
		}
	}
	pingOK(t, alpha, beta.Addr4(), 3)
	ga, gb := keyGeneration(t, alpha, "beta"), keyGeneration(t, beta, "alpha")
	// 100-byte datagrams at 800 kbit/s: 1,000 a second for 8 s, each way.
	stream := func(from, to *lab.Node, out chan<- string) {
		o, err := from.Host.Run("iperf", "-c", to.Addr4(), "-u", "-l", "100", "-b", "800K", "-t", "8", "-i", "2")
		if err != nil {
			o += "\n" + err.Error()
		}
		out <- o
	}
	ab, ba := make(chan string, 1), make(chan string, 1)
	go stream(alpha, beta, ab)
	go stream(beta, alpha, ba)
	outs := map[string]string{"alpha→beta": <-ab, "beta→alpha": <-ba}
	ga2, gb2 := keyGeneration(t, alpha, "beta"), keyGeneration(t, beta, "alpha")
	for dir, out := range outs {
		m := iperfLossRe.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			t.Errorf("%s: no server report in iperf's output:\n%s", dir, out)
			continue
		}
		last := m[len(m)-1] // the server's report of the whole run
		t.Logf("%s, 1,000 packets/s for 8 s: %s of %s lost", dir, last[1], last[2])
		if last[1] != "0" || last[2] == "0" {
			t.Errorf("%s: lost %s of %s datagrams across the key changes:\n%s", dir, last[1], last[2], out)
		}
	}
	t.Logf("sending key generations: alpha %d→%d, beta %d→%d", ga, ga2, gb, gb2)
	if ga2-ga < 5 || gb2-gb < 5 {
		t.Errorf("key generations moved %d (alpha) and %d (beta) during the streams, want at least 5 each", ga2-ga, gb2-gb)
	}
}

// TestCertExpiryClosesLinks: a link whose peer's certificate expires
// while traffic flows is closed within 60 s of the expiry, the expired
// node's rendezvous session ends, and the link does not come back.
func TestCertExpiryClosesLinks(t *testing.T) {
	o := newOverlay(t)
	alpha := o.node(t, o.public(t, "a"), "alpha", 1)
	beta := o.nodeWith(t, o.public(t, "b"), "beta", 2, func(s *lab.Spec) { s.Valid = 40 * time.Second })
	if _, err := alpha.WaitUp(30*time.Second, "beta"); err != nil {
		t.Fatal(err)
	}
	st, err := beta.Status()
	if err != nil {
		t.Fatal(err)
	}
	expiry := st.CertNotAfter
	if until := time.Until(expiry); until < 5*time.Second {
		t.Fatalf("beta's certificate expires in %s: too soon to see the link up first", until)
	}
	pings := make(chan string, 1)
	count := int(time.Until(expiry)/(200*time.Millisecond)) + 25 // until 5 s past the expiry
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := alpha.Host.RunContext(ctx, "ping", "-n", "-q", "-i", "0.2", "-W", "1", "-c", fmt.Sprint(count), beta.Addr4())
		pings <- fmt.Sprint(out, err)
	}()
	var closed time.Time
	eventually(t, time.Until(expiry)+65*time.Second, "alpha closes its link to beta", func() error {
		if state, _ := linkTo(t, alpha, "beta"); state == "up" {
			return fmt.Errorf("link up")
		}
		closed = time.Now()
		return nil
	})
	t.Logf("beta's certificate expired at %s; alpha's link to it closed %s later", expiry.Format("15:04:05"), closed.Sub(expiry).Round(100*time.Millisecond))
	if closed.Before(expiry) {
		t.Errorf("link closed %s before the certificate expired", expiry.Sub(closed))
	}
	eventually(t, 60*time.Second-time.Since(expiry), "the rendezvous ends beta's session", func() error {
		m, err := o.rv.Metrics()
		if err != nil {
			return err
		}
		if n := m["ipop_rendezvous_nodes"]; n != 1 {
			return fmt.Errorf("%v nodes connected", n)
		}
		return nil
	})
	time.Sleep(10 * time.Second)
	if state, _ := linkTo(t, alpha, "beta"); state == "up" {
		t.Error("the link to the expired node came back")
	}
	out := <-pings
	if m := lossRe.FindStringSubmatch(out); m == nil || m[2] == "0" {
		t.Errorf("no ping crossed the link before the expiry:\n%s", out)
	} else {
		t.Logf("pings every 200 ms from 35 s before the expiry to 5 s after: %s of %s answered", m[2], m[1])
	}
}

// TestRevokedNodeCutOff: once `ipopctl ca revoke` lists gamma and the
// rendezvous reloads the list, gamma loses its links and its session
// within 10 s, and cannot come back when it restarts.
func TestRevokedNodeCutOff(t *testing.T) {
	o := newOverlay(t)
	alpha := o.node(t, o.public(t, "a"), "alpha", 1)
	beta := o.node(t, o.public(t, "b"), "beta", 2)
	gamma := o.node(t, o.public(t, "g"), "gamma", 3)
	for _, n := range []*lab.Node{alpha, beta} {
		if _, err := n.WaitUp(30*time.Second, "gamma"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := o.l.Revoke(gamma.Cert())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := o.rv.SetRevoked(list); err != nil {
		t.Fatal(err)
	}
	cutOff := func() error {
		for _, n := range []*lab.Node{alpha, beta} {
			if state, _ := linkTo(t, n, "gamma"); state == "up" {
				return fmt.Errorf("%s still linked to gamma", n.Name)
			}
		}
		if state, _ := linkTo(t, gamma, "alpha"); state == "up" {
			return fmt.Errorf("gamma still linked to alpha")
		}
		m, err := o.rv.Metrics()
		if err != nil {
			return err
		}
		if n := m["ipop_rendezvous_nodes"]; n != 2 {
			return fmt.Errorf("%v nodes at the rendezvous", n)
		}
		return nil
	}
	eventually(t, 10*time.Second, "gamma cut off", cutOff)
	t.Logf("gamma lost its links and session %s after the rendezvous's SIGHUP", time.Since(start).Round(100*time.Millisecond))
	pingOK(t, alpha, beta.Addr4(), 3)

	// Restarted, gamma gets neither a session nor a link.
	m0, err := o.rv.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if err := gamma.Proc.Stop(); err != nil {
		t.Logf("stopping gamma: %v", err)
	}
	if err := gamma.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Second)
	if err := cutOff(); err != nil {
		t.Errorf("restarted gamma: %v", err)
	}
	m1, err := o.rv.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	key := `ipop_rendezvous_refused_total{reason="handshake_failed"}`
	if m1[key] <= m0[key] {
		t.Errorf("the rendezvous refused no handshake of the restarted gamma (%v → %v)", m0[key], m1[key])
	}
	if out, _ := gamma.Host.Run("ping", "-n", "-c", "2", "-W", "1", alpha.Addr4()); !strings.Contains(out, " 0 received") {
		t.Errorf("revoked gamma reaches alpha:\n%s", out)
	}
}
