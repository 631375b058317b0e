package igmp_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
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

func anySource(f filter.Filter) bool { return f.Equal(filter.Filter{Mode: filter.Exclude}) }
func left(f filter.Filter) bool      { return f.Empty() }

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
		k.await(ssm, 5*time.Second, func(f filter.Filter) bool { return f.Equal(filter.Filter{Sources: []netip.Addr{src}}) })
		k.steady(asm, filter.Filter{Mode: filter.Exclude}, 8*time.Second)
		if n := k.answered(asm); n < 2 || k.compat(asm) != 3 {
			t.Fatalf("%d current-state records for %v, compat %d", n, asm, k.compat(asm))
		}
		k.leave(asm, leaveBound, func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
		k.leave(ssm, leaveBound, func() error { return c.LeaveSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
		if st := k.sent(false); st.GroupQueries < 2 || st.SourceQueries < 2 {
			t.Errorf("last member queries: %+v", st)
		}
	})
	for _, v := range []int{2, 1} {
		t.Run(fmt.Sprintf("IGMPv%d host", v), func(t *testing.T) {
			t.Parallel()
			sysctls := append(quickUnsolicited(false), fmt.Sprintf("net.ipv4.conf.%s.force_igmp_version=%d", tapName, v))
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
			k.steady(asm, filter.Filter{Mode: filter.Exclude}, hold)
			if got := k.compat(asm); got != v {
				t.Fatalf("compat %d, want %d", got, v)
			}
			// IGMPv2: leave → group-specific queries → gone. IGMPv1 has
			// no leave: the group times out.
			k.leave(asm, bound, func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
			if st := k.sent(false); (st.GroupQueries >= 2) != (v == 2) {
				t.Errorf("group-specific queries: %+v", st)
			}
		})
	}
	for _, v := range []int{2, 1} {
		t.Run(fmt.Sprintf("MLDv%d", v), func(t *testing.T) {
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
			wantSSM := filter.Filter{Sources: []netip.Addr{src}}
			if v == 1 { // MLDv1 cannot say which source: the router sees a plain join
				wantSSM = filter.Filter{Mode: filter.Exclude}
			}
			k.do(func() error { return c.JoinSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
			k.await(ssm, 5*time.Second, func(f filter.Filter) bool { return f.Equal(wantSSM) })
			k.steady(asm, filter.Filter{Mode: filter.Exclude}, 8*time.Second)
			if got := k.compat(asm); got != v {
				t.Fatalf("compat %d, want %d", got, v)
			}
			if n := k.answered(asm); n < 2 {
				t.Fatalf("%d answers for %v", n, asm)
			}
			k.leave(asm, leaveBound, func() error { return c.LeaveGroup(k.ifi, udp(asm)) })
			k.leave(ssm, leaveBound, func() error { return c.LeaveSourceSpecificGroup(k.ifi, udp(ssm), udp(src)) })
			if st := k.sent(true); st.GroupQueries < 2 || (v == 2) != (st.SourceQueries >= 2) {
				t.Errorf("last listener queries: %+v", st)
			}
		})
	}
}

// leave runs the leave and checks that the group is gone within bound.
func (k *kernelRig) leave(group netip.Addr, bound time.Duration, leave func() error) {
	k.t.Helper()
	start := time.Now()
	k.do(leave)
	d := k.await(group, 2*bound, left).Sub(start)
	k.t.Logf("%v: INCLUDE{} %v after the leave", group, d.Round(time.Millisecond))
	if d > bound {
		k.t.Errorf("leave of %v took %v, want at most %v", group, d, bound)
	}
}

// sent returns what the router has sent so far.
func (k *kernelRig) sent(v6 bool) igmp.MessageStats {
	var st igmp.Stats
	k.call(func(r *igmp.Router) { st = r.Stats() })
	if v6 {
		return st.MLD.Sent
	}
	return st.IGMP.Sent
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

// compat returns the group's compatibility version.
func (k *kernelRig) compat(group netip.Addr) int {
	c := 0
	k.call(func(r *igmp.Router) {
		for _, g := range r.Groups(time.Now()) {
			if g.Group == group {
				c = g.Compat
			}
		}
	})
	return c
}

// answered counts the kernel's messages, until now, that only a query can
// cause: IGMPv3/MLDv2 current-state records (IS_IN, IS_EX) for group, or,
// from older versions, any report for it.
func (k *kernelRig) answered(group netip.Addr) int {
	n := 0
	for {
		select {
		case m := <-k.kernel:
			for _, r := range m.Records {
				if r.Group == group && (r.Type == igmp.ModeIsInclude || r.Type == igmp.ModeIsExclude) {
					n++
				}
			}
			if m.Group == group && (m.Type == igmp.TypeIGMPv1Report || m.Type == igmp.TypeIGMPv2Report || m.Type == igmp.TypeMLDv1Report) {
				n++
			}
		default:
			return n
		}
	}
}
