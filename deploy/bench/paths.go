package main

import (
	"fmt"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// A path is one way for multicast to get from the sender's namespace to the
// receiver's: the sender sends out SndIf, the receiver joins on RcvIf.
type path struct {
	Name         string
	Snd, Rcv     *netns.Host
	SndIf, RcvIf string
	// Daemons carry the traffic (ipopd or tincd on the sending side, then
	// the receiving side); their CPU is measured with the cell's.
	Daemons []daemon
}

type daemon struct {
	Name string
	Proc *netns.Proc
}

// setupNative joins two bare namespaces with one veth pair: the kernel's
// own multicast with no overlay, the baseline every ratio divides by.
func setupNative(tb *netns.Testbed) (*path, error) {
	snd, err := tb.AddNamespace("native-snd")
	if err != nil {
		return nil, err
	}
	rcv, err := tb.AddNamespace("native-rcv")
	if err != nil {
		return nil, err
	}
	if err := tb.Veth(snd, "veth0", rcv, "veth0"); err != nil {
		return nil, err
	}
	// Addresses only so the receiver's join has an interface address to
	// name and datagrams a source that passes the reverse-path check.
	for h, addr := range map[*netns.Host]string{snd: "10.9.0.1/24", rcv: "10.9.0.2/24"} {
		if _, err := h.Run("ip", "addr", "add", addr, "dev", "veth0"); err != nil {
			return nil, err
		}
	}
	return &path{Name: "native", Snd: snd, Rcv: rcv, SndIf: "veth0", RcvIf: "veth0"}, nil
}

// setupIpopd starts a rendezvous and two ipopd nodes on public hosts of the
// testbed and waits until they are linked. The sender uses node A's overlay
// address (ipop0), the receiver joins on node B's.
func setupIpopd(tb *netns.Testbed) (*path, error) {
	l, err := lab.New(tb, "bench")
	if err != nil {
		return nil, err
	}
	rvHost, err := tb.AddPublicHost("rv")
	if err != nil {
		return nil, err
	}
	// No TURN: both nodes are on the one flat underlay, so host candidates
	// link them directly.
	rv, err := l.StartRendezvous(rvHost, false)
	if err != nil {
		return nil, err
	}
	var nodes [2]*lab.Node
	for i, name := range []string{"alpha", "beta"} {
		h, err := tb.AddPublicHost("ipopd-" + name)
		if err != nil {
			return nil, err
		}
		// lab logs at debug level for tests; a benchmark measures what a
		// deployment runs, which is ipopd's default level.
		nodes[i], err = l.Start(h, lab.Spec{
			Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1), Rendezvous: rv,
			Config: map[string]any{"log": map[string]any{"level": "info"}},
		})
		if err != nil {
			return nil, err
		}
	}
	a, b := nodes[0], nodes[1]
	if _, err := a.WaitUp(60*time.Second, b.Name); err != nil {
		return nil, err
	}
	if _, err := b.WaitUp(60*time.Second, a.Name); err != nil {
		return nil, err
	}
	return &path{
		Name: "ipopd", Snd: a.Host, Rcv: b.Host, SndIf: "ipop0", RcvIf: "ipop0",
		Daemons: []daemon{{"ipopd A", a.Proc}, {"ipopd B", b.Proc}},
	}, nil
}
