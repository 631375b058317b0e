package nat

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v2/vnet"
)

// TestListenOnVirtualNetwork: the socket runs on an injected network
// (pion's vnet, one datagram per read and write there): two nodes on a
// virtual LAN exchange data packets through Serve and WriteBatch, with
// host candidates from the virtual interfaces. No root, no host sockets.
func TestListenOnVirtualNetwork(t *testing.T) {
	checkLeaks(t)
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.18.0.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	netA, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.18.0.11"}})
	if err != nil {
		t.Fatal(err)
	}
	netB, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.18.0.12"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*vnet.Net{netA, netB} {
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })

	a, err := Listen(Settings{Port: 4000}, netA, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := Listen(Settings{Port: 4000}, netB, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if hosts := hostIPv4s(a.net.ifs); len(hosts) != 1 || !hosts[0].Equal(net.IPv4(198, 18, 0, 11)) {
		t.Fatalf("host candidates on the virtual net: %v", hosts)
	}

	got := make(chan Packet, 8)
	go func() {
		_ = b.Serve(func(batch []Packet) {
			for _, p := range batch {
				got <- Packet{Data: append([]byte(nil), p.Data...), Addr: p.Addr}
			}
		})
	}()
	// Serve installs its handler asynchronously (until then packets are
	// dropped and counted): send one at a time until one arrives, then a
	// batch of two, which must both arrive.
	from, to := netip.MustParseAddrPort("198.18.0.11:4000"), netip.MustParseAddrPort("198.18.0.12:4000")
	data := []byte{0xd0, 1, 2, 3}
	recv := func(wait time.Duration) bool {
		select {
		case p := <-got:
			if string(p.Data) != string(data) || p.Addr != from {
				t.Errorf("got %x from %v", p.Data, p.Addr)
			}
			return true
		case <-time.After(wait):
			return false
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := a.WriteTo(data, to); err != nil {
			t.Fatal(err)
		}
		if recv(20 * time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no packet over the virtual network")
		}
	}
	if n, err := a.WriteBatch([]Packet{{Data: data, Addr: to}, {Data: data, Addr: to}}); err != nil || n != 2 {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	for i := range 2 {
		if !recv(5 * time.Second) {
			t.Fatalf("batch packet %d lost", i)
		}
	}
}
