package overlay_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/pion/logging"
	"github.com/pion/transport/v2/vnet"

	"github.com/ipopd/ipopd/overlay/linktest"
	"go.uber.org/goleak"
)

// TestTwoNodesOnVirtualNetwork: the same link stack on pion's virtual
// network instead of the host's loopback (nat.Listen on an injected
// transport.Net): ICE over the virtual LAN, DTLS, and frames both ways.
func TestTwoNodesOnVirtualNetwork(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first: runs last
	lan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.18.0.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	var nets []*vnet.Net
	for i := range 2 {
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{fmt.Sprintf("198.18.0.%d", 11+i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := lan.AddNet(n); err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	if err := lan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lan.Stop() })
	ca, hub := linktest.NewCA(t), linktest.NewHub()
	a := linktest.Start(t, ca, hub, "alpha", linktest.Options{Net: nets[0], Interfaces: []string{"eth0"}, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}})
	b := linktest.Start(t, ca, hub, "beta", linktest.Options{Net: nets[1], Interfaces: []string{"eth0"}, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}})
	waitUp(t, a, 1)
	waitUp(t, b, 1)
	if p := a.Manager.Peers().Links[0]; p.Path != "host" || p.Remote != "198.18.0.12:"+fmt.Sprint(b.Socket.LocalAddr().Port) {
		t.Errorf("a's link: %+v", p)
	}
	bcast := frame(0xff, 0xa, "hello from alpha")
	a.TAP.Inject(bcast)
	expectFrame(t, b, bcast)
	uni := frame(0xa, 0xb, "unicast to alpha")
	b.TAP.Inject(uni)
	expectFrame(t, a, uni)
}
