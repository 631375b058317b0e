package igmp_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ipopd/ipopd/igmp"
)

// Short timers so the kernel's answers matter within seconds: GMI =
// 2 × 2 s + 1 s = 5 s (14 s for IGMPv1 hosts, which take up to 10 s to
// answer), LMQT = 2 s.
func fastConfig(version int) igmp.Config {
	return igmp.Config{Version: version, QueryInterval: 2 * time.Second, QueryResponseInterval: time.Second,
		LastMemberQueryInterval: time.Second, Robustness: 2}
}

// leaveBound is the brief's bound: last member query interval × robustness + 1 s.
const leaveBound = 3 * time.Second

// quickUnsolicited makes the kernel repeat its unsolicited reports within
// 100 ms, so that after a moment every report it sends answers a query.
func quickUnsolicited(v6 bool) []string {
	if v6 {
		return []string{"net.ipv6.conf." + tapName + ".mldv1_unsolicited_report_interval=100",
			"net.ipv6.conf." + tapName + ".mldv2_unsolicited_report_interval=100"}
	}
	return []string{"net.ipv4.conf." + tapName + ".igmpv2_unsolicited_report_interval=100",
		"net.ipv4.conf." + tapName + ".igmpv3_unsolicited_report_interval=100"}
}

func anySource(f igmp.Filter) bool { return f.Equal(igmp.Filter{Mode: igmp.Exclude}) }
func left(f igmp.Filter) bool      { return !f.Member() }

// TestKernel runs the Router against the kernel's own IGMP and MLD: joins
// from sockets in the namespace become events, the kernel answers our
// queries (memberships outlive the group membership interval), and leaves
// end in INCLUDE{} within LMQI × robustness + 1 s.
func TestKernel(t *testing.T) {
	t.Run("IGMPv3", func(t *testing.T) {
		t.Parallel()
		k := newKernelRig(t, fastConfig(3), quickUnsolicited(false)...)
		c := k.udp4()
		asm, ssm, src := netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("232.1.2.3"), netip.MustParseAddr("10.77.0.99")
		k.do(func() error { return c.JoinGroup(k.ifi, udp(asm)) })
		k.await(asm, 5*time.Second, anySource)
		k.do(func() error { return c.JoinSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
		k.await(ssm, 5*time.Second, func(f igmp.Filter) bool { return f.Equal(igmp.Filter{Sources: []netip.Addr{src}}) })
		k.steady(asm, igmp.Filter{Mode: igmp.Exclude}, 8*time.Second)
		if n := k.answered(asm); n < 2 || k.compat(asm) != 3 {
			t.Fatalf("%d current-state records for %v, compat %d", n, asm, k.compat(asm))
		}
		start := time.Now()
		k.do(func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
		if d := k.await(asm, 2*leaveBound, left).Sub(start); d > leaveBound {
			t.Errorf("leave of %v took %v", asm, d)
		}
		start = time.Now()
		k.do(func() error { return c.LeaveSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
		if d := k.await(ssm, 2*leaveBound, left).Sub(start); d > leaveBound {
			t.Errorf("leave of %v took %v", ssm, d)
		}
	})
	for _, v := range []int{2, 1} {
		t.Run("IGMPv"+string(rune('0'+v))+" host", func(t *testing.T) {
			t.Parallel()
			sysctls := append(quickUnsolicited(false), "net.ipv4.conf."+tapName+".force_igmp_version="+string(rune('0'+v)))
			k := newKernelRig(t, fastConfig(3), sysctls...)
			c := k.udp4()
			asm := netip.MustParseAddr("239.1.2.4")
			k.do(func() error { return c.JoinGroup(k.ifi, udp(asm)) })
			k.await(asm, 5*time.Second, anySource)
			// v1 hosts answer a query within 10 s, so their groups live
			// 14 s: outliving that shows the kernel answers us.
			hold, bound := 8*time.Second, leaveBound
			if v == 1 {
				hold, bound = 17*time.Second, 14*time.Second+time.Second
			}
			k.steady(asm, igmp.Filter{Mode: igmp.Exclude}, hold)
			if got := k.compat(asm); got != v {
				t.Fatalf("compat %d, want %d", got, v)
			}
			// IGMPv2: leave → group-specific queries → gone. IGMPv1 has
			// no leave: the group times out.
			start := time.Now()
			k.do(func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
			if d := k.await(asm, 2*bound, left).Sub(start); d > bound {
				t.Errorf("leave took %v, want at most %v", d, bound)
			}
		})
	}
	for _, v := range []int{2, 1} {
		t.Run("MLDv"+string(rune('0'+v)), func(t *testing.T) {
			t.Parallel()
			sysctls := quickUnsolicited(true)
			if v == 1 {
				sysctls = append(sysctls, "net.ipv6.conf."+tapName+".force_mld_version=1")
			}
			k := newKernelRig(t, fastConfig(3), sysctls...)
			c := k.udp6()
			asm, ssm, src := netip.MustParseAddr("ff15::77"), netip.MustParseAddr("ff3e::77"), netip.MustParseAddr("fd77::99")
			k.do(func() error { return c.JoinGroup(k.ifi, udp(asm)) })
			k.await(asm, 5*time.Second, anySource)
			wantSSM := igmp.Filter{Sources: []netip.Addr{src}}
			if v == 1 { // MLDv1 cannot say which source: the router sees a plain join
				wantSSM = igmp.Filter{Mode: igmp.Exclude}
			}
			k.do(func() error { return c.JoinSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
			k.await(ssm, 5*time.Second, func(f igmp.Filter) bool { return f.Equal(wantSSM) })
			k.steady(asm, igmp.Filter{Mode: igmp.Exclude}, 8*time.Second)
			if got := k.compat(asm); got != v {
				t.Fatalf("compat %d, want %d", got, v)
			}
			if n := k.answered(asm); n < 2 {
				t.Fatalf("%d answers for %v", n, asm)
			}
			for _, g := range []netip.Addr{asm, ssm} {
				start := time.Now()
				if g == asm {
					k.do(func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
				} else {
					k.do(func() error { return c.LeaveSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
				}
				if d := k.await(g, 2*leaveBound, left).Sub(start); d > leaveBound {
					t.Errorf("leave of %v took %v", g, d)
				}
			}
		})
	}
}

func udp(a netip.Addr) *net.UDPAddr { return &net.UDPAddr{IP: a.AsSlice()} }

// do runs f inside the namespace.
func (k *kernelRig) do(f func() error) {
	k.t.Helper()
	if err := k.h.Do(f); err != nil {
		k.t.Fatal(err)
	}
}

// udp4 and udp6 open a socket in the namespace to join groups with.
func (k *kernelRig) udp4() *ipv4.PacketConn {
	var c net.PacketConn
	k.do(func() (err error) { c, err = net.ListenPacket("udp4", "0.0.0.0:0"); return err })
	k.t.Cleanup(func() { c.Close() })
	return ipv4.NewPacketConn(c)
}

func (k *kernelRig) udp6() *ipv6.PacketConn {
	var c net.PacketConn
	k.do(func() (err error) { c, err = net.ListenPacket("udp6", "[::]:0"); return err })
	k.t.Cleanup(func() { c.Close() })
	return ipv6.NewPacketConn(c)
}
