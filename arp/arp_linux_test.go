package arp_test

// The real-kernel check: the Linux kernel in a namespace resolves
// addresses of "remote" hosts on a TAP, and the answers Local builds from
// the table land in its neighbour table.
//
//	namespace: UDP send to 10.88.0.2 / fd88::2 ─► kernel: ARP request / NS
//	TAP Read (reader goroutine) ─► test: Local ─► Reply ─► TAP Write
//	kernel: neighbour entry REACHABLE ─► the queued datagram, to that MAC

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/deploy/fuzzseed"
	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/tap"
)

var captureSeeds = flag.Bool("capture-seeds", false, "write the kernel's ARP/ND frames into testdata/fuzz as seed corpus")

const kernelTAP = "arpt0"

var kernelRemoteMAC = [6]byte{0x02, 0x88, 0, 0, 0, 2}

func TestKernel(t *testing.T) {
	tb := netns.NewT(t)
	h, err := tb.AddNamespace("arp")
	if err != nil {
		t.Fatal(err)
	}
	var dev tap.Device
	err = h.Do(func() (err error) {
		dev, err = tap.Open(tap.Config{Name: kernelTAP, Mode: tap.ModeHost, MTU: 1400,
			Address: netip.MustParsePrefix("10.88.0.1/24"), Address6: netip.MustParsePrefix("fd88::1/64")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	frames := tapReader(t, dev)

	table := arp.NewTable(arp.Config{})
	table.Apply(time.Now(), nodeB, &arp.Advert{Full: true, Hosts: []arp.Host{
		{IP: ip("10.88.0.2"), MAC: kernelRemoteMAC}, {IP: ip("fd88::2"), MAC: kernelRemoteMAC, Role: arp.RoleHost}}})
	k := &kernel{t: t, dev: dev, table: table, frames: frames, saw: map[string]bool{}}
	for _, c := range []struct{ network, addr string }{{"udp4", "10.88.0.2"}, {"udp6", "fd88::2"}} {
		t.Run(c.network, func(t *testing.T) {
			k.t = t
			err := h.Do(func() error {
				conn, err := net.Dial(c.network, net.JoinHostPort(c.addr, "9"))
				if err != nil {
					return err
				}
				defer conn.Close()
				_, err = conn.Write([]byte("resolve me"))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			answered := k.serve(ip(c.addr).String(), func(f []byte) bool {
				return [6]byte(f[:6]) == kernelRemoteMAC && udpTo(f, ip(c.addr))
			})
			if !answered {
				t.Fatal("the datagram came, but not thanks to us")
			}
			k.neighbour(h, c.addr)
		})
	}
	// The kernel probes its link-local address (RFC 4862 §5.4, with a
	// nonce: RFC 7527) within a second of the link coming up: Local must
	// pass the probe on and not answer it.
	t.Run("dad", func(t *testing.T) {
		k.t = t
		k.serve("a DAD probe", func([]byte) bool { return k.saw["kernel-ns-dad"] })
	})
	if st := table.Stats(); st.Errors != 0 || st.Answered < 2 {
		t.Errorf("stats %+v", st)
	}
}

type kernel struct {
	t      *testing.T
	dev    tap.Device
	table  *arp.Table
	frames <-chan []byte
	saw    map[string]bool // kinds of ARP/ND frame seen
}

// serve hands the kernel's ARP and ND frames to Local and writes the
// replies to the TAP until done accepts a frame (the datagram the kernel
// held back until the address was resolved, sent to the remote MAC).
func (k *kernel) serve(what string, done func(f []byte) bool) (answered bool) {
	k.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		var f []byte
		select {
		case f = <-k.frames:
		case <-deadline:
			k.t.Fatalf("no %s within 5 s (answered: %v)", what, answered)
		}
		switch tap.Classify(f) {
		case tap.ClassARP, tap.ClassNDP:
			d, err := k.table.Local(time.Now(), f)
			if err != nil {
				k.t.Errorf("Local refused a kernel frame: %v\n% x", err, f)
			}
			k.save(f, d)
			if d.Reply != nil {
				if _, err := k.dev.Write([][]byte{d.Reply}); err != nil {
					k.t.Fatal(err)
				}
				answered = true
			}
		}
		if done(f) {
			return answered
		}
	}
}

// udpTo reports whether f is an untagged IPv4 or IPv6 UDP packet to addr.
func udpTo(f []byte, addr netip.Addr) bool {
	if addr.Is4() {
		return len(f) >= 34 && f[12] == 0x08 && f[13] == 0 && f[23] == 17 && netip.AddrFrom4([4]byte(f[30:34])) == addr
	}
	return len(f) >= 54 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 17 && netip.AddrFrom16([16]byte(f[38:54])) == addr
}

// neighbour checks that the kernel's neighbour table binds addr to the
// remote MAC, in a state that says our answer was taken.
func (k *kernel) neighbour(h *netns.Host, addr string) {
	k.t.Helper()
	var last string
	for range 50 {
		out, err := h.Run("ip", "-j", "neigh", "show", "to", addr, "dev", kernelTAP)
		if err != nil {
			k.t.Fatal(err)
		}
		var ns []struct {
			Dst, LLAddr string
			State       []string
		}
		if err := json.Unmarshal([]byte(out), &ns); err != nil {
			k.t.Fatalf("ip -j neigh: %v\n%s", err, out)
		}
		last = out
		if len(ns) == 1 && ns[0].LLAddr == net.HardwareAddr(kernelRemoteMAC[:]).String() &&
			slices.ContainsFunc(ns[0].State, func(s string) bool { return s == "REACHABLE" || s == "STALE" }) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	k.t.Fatalf("neighbour %s: %s", addr, last)
}

// save notes the kind of a kernel frame, checks that a DAD probe was not
// answered and, with -capture-seeds, saves the first of each kind as fuzz
// seeds.
func (k *kernel) save(f []byte, d arp.Decision) {
	kind := "kernel-arp"
	if a, err := arp.ParseARP(f); err == nil {
		kind = map[uint16]string{arp.OpRequest: "kernel-arp-request", arp.OpReply: "kernel-arp-reply"}[a.Op]
	} else if n, err := arp.ParseND(f); err == nil {
		kind = map[uint8]string{arp.TypeNS: "kernel-ns", arp.TypeNA: "kernel-na"}[n.Type]
		if n.DAD() {
			kind = "kernel-ns-dad"
			if d.Reply != nil || !d.Forward {
				k.t.Errorf("DAD probe for %v: %+v, want forward only", n.Target, d)
			}
		}
	} else if errors.Is(err, arp.ErrUnsupported) {
		kind = fmt.Sprintf("kernel-icmpv6-%d", f[54])
	}
	if k.saw[kind] {
		return
	}
	k.saw[kind] = true
	if !*captureSeeds {
		return
	}
	target := "FuzzParseND"
	if f[12] == 0x08 {
		target = "FuzzParseARP"
	}
	for _, dir := range []string{target, "FuzzLocal"} {
		fuzzseed.Write(k.t, dir, map[string][]byte{kind: f})
	}
}

// tapReader delivers copies of the frames read from dev until it is closed.
func tapReader(t *testing.T, dev tap.Device) <-chan []byte {
	ch := make(chan []byte, 256)
	go func() {
		bufs, sizes := make([][]byte, 16), make([]int, 16)
		for i := range bufs {
			bufs[i] = make([]byte, tap.MaxFrame(dev.MTU()))
		}
		for {
			n, err := dev.Read(bufs, sizes)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("TAP read: %v", err)
				}
				return
			}
			for i := range n {
				select {
				case ch <- slices.Clone(bufs[i][:sizes[i]]):
				default: // the test has what it needs; drop the rest
				}
			}
		}
	}()
	return ch
}
