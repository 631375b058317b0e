package tap_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/tap"
)

var peerMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 2}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// reader delivers frames read from dev, in batches as Read returned them.
func reader(t *testing.T, dev tap.Device) <-chan [][]byte {
	ch := make(chan [][]byte, 64)
	go func() {
		defer close(ch)
		bufs := make([][]byte, 16)
		for i := range bufs {
			bufs[i] = make([]byte, tap.MaxFrame(dev.MTU()))
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Read: %v", err) // t.Errorf, not Fatal: this is not the test goroutine
				}
				return
			}
			batch := make([][]byte, n)
			for i := range n {
				batch[i] = append([]byte(nil), bufs[i][:sizes[i]]...)
			}
			ch <- batch
		}
	}()
	return ch
}

// TestHostModeFrameIO: the kernel answers ARP and ping frames written to a
// real TAP, and its answers come back through batched reads.
func TestHostModeFrameIO(t *testing.T) {
	tb := netns.NewT(t)
	h, err := tb.AddNamespace("tap")
	if err != nil {
		t.Fatal(err)
	}
	var dev tap.Device
	err = h.Do(func() (err error) {
		dev, err = tap.Open(tap.Config{Name: "tap7", Mode: tap.ModeHost, MTU: 1280,
			Address: netip.MustParsePrefix("10.77.0.1/24"), Address6: netip.MustParsePrefix("fd77::1/64")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	out, err := h.Run("ip", "-j", "addr", "show", "dev", "tap7")
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		MTU   int      `json:"mtu"`
		Flags []string `json:"flags"`
		Addr  string   `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip addr: %v %s", err, out)
	}
	if links[0].MTU != 1280 || !strings.Contains(out, `"10.77.0.1"`) || !strings.Contains(out, `"fd77::1"`) ||
		!strings.Contains(strings.Join(links[0].Flags, ","), "UP") || links[0].Addr != dev.HardwareAddr().String() {
		t.Fatalf("TAP as the kernel sees it: %s (our MAC %s)", out, dev.HardwareAddr())
	}
	frames := reader(t, dev)

	eth := &layers.Ethernet{SrcMAC: peerMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: peerMAC, SourceProtAddress: []byte{10, 77, 0, 2},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 77, 0, 1}}
	if _, err := dev.Write([][]byte{serialize(t, eth, arp)}); err != nil {
		t.Fatal(err)
	}
	awaitFrame(t, frames, "ARP reply from the kernel", func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		return ok && a.Operation == layers.ARPReply && net.HardwareAddr(a.SourceHwAddress).String() == dev.HardwareAddr().String() &&
			net.IP(a.SourceProtAddress).Equal(net.IP{10, 77, 0, 1})
	})

	// Ten pings in one Write; ten replies come back, however they batch.
	var batch [][]byte
	for seq := range 10 {
		batch = append(batch, serialize(t,
			&layers.Ethernet{SrcMAC: peerMAC, DstMAC: dev.HardwareAddr(), EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 77, 0, 2}, DstIP: net.IP{10, 77, 0, 1}},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: uint16(seq)},
			gopacket.Payload("ipopd tap test")))
	}
	if n, err := dev.Write(batch); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	seen := map[uint16]bool{}
	awaitFrame(t, frames, "ten echo replies", func(p gopacket.Packet) bool {
		icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ok && icmp.TypeCode.Type() == layers.ICMPv4TypeEchoReply && icmp.Id == 7 {
			seen[icmp.Seq] = true
		}
		return len(seen) == 10
	})

	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Read(make([][]byte, 1), make([]int, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := h.Run("ip", "link", "show", "tap7"); err == nil {
		t.Error("tap7 still exists after Close")
	}
}

// awaitFrame feeds every frame read to done until done reports true.
func awaitFrame(t *testing.T, frames <-chan [][]byte, what string, done func(gopacket.Packet) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case batch, ok := <-frames:
			if !ok {
				t.Fatalf("%s: reader stopped", what)
			}
			for _, f := range batch {
				if done(gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)) {
					return
				}
			}
		case <-timeout:
			t.Fatalf("%s: nothing within 5s", what)
		}
	}
}

// TestSwitchModeAndErrors: switch mode joins a bridge; a missing bridge, a
// non-bridge, and a name held by another kind of interface are clear errors
// that leave no TAP behind.
func TestSwitchModeAndErrors(t *testing.T) {
	tb := netns.NewT(t)
	h, err := tb.AddNamespace("sw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run("ip", "link", "add", "br0", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	err = h.Do(func() error {
		dev, err := tap.Open(tap.Config{Name: "tap8", Mode: tap.ModeSwitch, MTU: 1400, Bridge: "br0"})
		if err != nil {
			return err
		}
		defer dev.Close()
		out, err := h.Run("ip", "-o", "link", "show", "tap8")
		if err != nil || !strings.Contains(out, "master br0") {
			t.Errorf("tap8 not in br0: %v %s", err, out)
		}
		// A permanent multicast router port, whoever the querier is.
		// (ip netns exec mounts the namespace's own sysfs.)
		if b, err := h.Run("cat", "/sys/class/net/tap8/brport/multicast_router"); err != nil || strings.TrimSpace(b) != "2" {
			t.Errorf("tap8's multicast_router: %q, %v; want 2", b, err)
		}
		for _, c := range []struct {
			cfg  tap.Config
			want error
		}{
			{tap.Config{Name: "tap9", Mode: tap.ModeSwitch, MTU: 1400, Bridge: "nobr"}, tap.ErrBridge},
			{tap.Config{Name: "tap9", Mode: tap.ModeSwitch, MTU: 1400, Bridge: "lo"}, tap.ErrBridge},
			{tap.Config{Name: "lo", Mode: tap.ModeHost, MTU: 1400}, tap.ErrExists},
		} {
			if _, err := tap.Open(c.cfg); !errors.Is(err, c.want) {
				t.Errorf("Open(%+v) = %v, want %v", c.cfg, err, c.want)
			}
		}
		if out, err := h.Run("ip", "link", "show", "tap9"); err == nil {
			t.Errorf("failed Open left tap9 behind: %s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
