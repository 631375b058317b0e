package igmp_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp"
)

// TestKernelQuerySources finds which query sources Linux answers (the
// findings are documented at igmp.Config.IPv4 and IPv6). It writes general
// queries straight to the TAP, each from one source, and looks for a
// current-state record (IS_EX) of a group a socket joined: only a query
// the kernel accepted makes it send one.
func TestKernelQuerySources(t *testing.T) {
	t.Parallel()
	type source struct {
		name   string
		ip     netip.Addr
		tapMAC bool // send from the TAP's own MAC, not routerMAC
		ok     bool // the kernel answers
	}
	for _, c := range []struct {
		name    string
		v6      bool
		sysctls []string
		sources []source
	}{
		{"IPv4 rp_filter=0", false, []string{"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf." + tapName + ".rp_filter=0",
			"net.ipv4.conf.all.accept_local=0", "net.ipv4.conf." + tapName + ".accept_local=0"}, []source{
			{"the TAP's own address", netip.MustParseAddr("10.77.0.1"), false, false},
			{"another address of the subnet", netip.MustParseAddr("10.77.0.254"), false, true},
			{"0.0.0.0", netip.IPv4Unspecified(), false, true},
			{"an address off the subnet", netip.MustParseAddr("192.0.2.1"), false, true},
			{"the subnet, from the TAP's own MAC", netip.MustParseAddr("10.77.0.253"), true, true},
		}},
		{"IPv4 rp_filter=1", false, []string{"net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.all.accept_local=0",
			"net.ipv4.conf." + tapName + ".accept_local=0"}, []source{
			{"the TAP's own address", netip.MustParseAddr("10.77.0.1"), false, false},
			{"another address of the subnet", netip.MustParseAddr("10.77.0.254"), false, true},
			{"0.0.0.0", netip.IPv4Unspecified(), false, true},
			{"an address off the subnet", netip.MustParseAddr("192.0.2.1"), false, false},
		}},
		{"IPv6", true, nil, []source{
			{"the TAP's own link-local", netip.Addr{}, false, true}, // filled in below
			{"another link-local", netip.MustParseAddr("fe80::77:1"), false, true},
			{"the TAP's own global", netip.MustParseAddr("fd77::1"), false, false},
			{"another global", netip.MustParseAddr("fd77::fe"), false, false},
			{"another link-local, from the TAP's own MAC", netip.MustParseAddr("fe80::77:2"), true, true},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, dev, ifi := openTAP(t, append(c.sysctls, quickUnsolicited(c.v6)...)...)
			stop := make(chan struct{})
			reads := reader(t, dev, stop)
			defer func() {
				close(stop)
				dev.Close()
				for range reads {
				}
			}()
			k := &kernelRig{t: t, h: h, dev: dev, ifi: ifi}
			group, query, dst := netip.MustParseAddr("239.7.7.7"), &igmp.Message{Type: igmp.TypeIGMPQuery, Version: 3,
				Group: netip.IPv4Unspecified(), MaxRespCode: 5, QRV: 2, QQIC: 125}, netip.MustParseAddr("224.0.0.1")
			if c.v6 {
				group, query, dst = netip.MustParseAddr("ff15::7"), &igmp.Message{Type: igmp.TypeMLDQuery, Version: 2,
					Group: netip.IPv6Unspecified(), MaxRespCode: 500, QRV: 2, QQIC: 125}, netip.MustParseAddr("ff02::1")
				c6 := k.udp6()
				k.do(func() error { return c6.JoinGroup(ifi, udp(group)) })
				c.sources[0].ip = linkLocal(t, h)
			} else {
				c4 := k.udp4()
				k.do(func() error { return c4.JoinGroup(ifi, udp(group)) })
			}
			time.Sleep(time.Second) // the unsolicited reports of the join
			drainBatches(reads)
			for _, s := range c.sources {
				mac := routerMAC
				if s.tapMAC {
					mac = dev.HardwareAddr()
				}
				f, err := query.Frame(mac, s.ip, dst)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := dev.Write([][]byte{f}); err != nil {
					t.Fatal(err)
				}
				got := currentState(reads, group, 1500*time.Millisecond)
				t.Logf("query from %s (%v, MAC %v): answered %v", s.name, s.ip, mac, got)
				if got != s.ok {
					t.Errorf("query from %s (%v): answered %v, want %v", s.name, s.ip, got, s.ok)
				}
			}
		})
	}
}

// linkLocal waits for the TAP's link-local address to leave DAD.
func linkLocal(t *testing.T, h interface {
	Run(...string) (string, error)
}) netip.Addr {
	t.Helper()
	for range 50 {
		out, err := h.Run("ip", "-6", "-o", "addr", "show", "dev", tapName, "scope", "link", "-tentative")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the TAP has no usable link-local address")
	return netip.Addr{}
}

func drainBatches(ch <-chan [][]byte) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// currentState reports whether the kernel sent an IS_EX record for group
// within d.
func currentState(reads <-chan [][]byte, group netip.Addr, d time.Duration) bool {
	deadline := time.After(d)
	found := false
	for {
		select {
		case batch := <-reads:
			for _, f := range batch {
				p, v6 := ipPayload(f)
				parse := igmp.ParseIGMP
				if v6 {
					parse = igmp.ParseMLD
				}
				if m, err := parse(p); err == nil {
					for _, r := range m.Records {
						found = found || r.Group == group && r.Type == igmp.ModeIsExclude
					}
				}
			}
		case <-deadline:
			return found
		}
	}
}
