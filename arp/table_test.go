package arp_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// lookup returns the entry for a at now.
func lookup(tb *arp.Table, now time.Time, a string) (arp.Entry, bool) {
	for _, e := range tb.Entries(now) {
		if e.IP == ip(a) {
			return e, true
		}
	}
	return arp.Entry{}, false
}

// want checks the binding of a: its MAC, owner (zero: local) and Via.
func want(t *testing.T, tb *arp.Table, now time.Time, a string, mac [6]byte, owner nodeid.ID, via string) {
	t.Helper()
	e, ok := lookup(tb, now, a)
	if !ok {
		t.Fatalf("%s: no entry", a)
	}
	if e.MAC != mac || e.Owner != owner || e.Local != owner.IsZero() || e.Via != via {
		t.Fatalf("%s: %v at %s local %v via %s; want %v at %s via %s", a, hwAddr(e.MAC), e.Owner.Short(), e.Local, e.Via,
			hwAddr(mac), owner.Short(), via)
	}
}

func local(t *testing.T, tb *arp.Table, now time.Time, f []byte) arp.Decision {
	t.Helper()
	d, err := tb.Local(now, f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUnknownTargetForwarded(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	for _, f := range [][]byte{request(t, hw(1), "10.0.0.1", "10.0.0.2"), ns(t, hw(1), "fd00::1", "fd00::2")} {
		if d := local(t, tb, t0, f); !d.Forward || d.Reply != nil {
			t.Fatalf("unknown target: %+v, want forward", d)
		}
	}
	want(t, tb, t0, "10.0.0.1", hw(1), nodeid.ID{}, arp.ViaARPRequest)
	want(t, tb, t0, "fd00::1", hw(1), nodeid.ID{}, arp.ViaNS)
	if st := tb.Stats(); st != (arp.Stats{Forwarded: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

// TestLocalTargetSuppressed: a local target answers itself (the TAP or
// the bridge already delivered the request to it), so the request goes
// nowhere else.
func TestLocalTargetSuppressed(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	local(t, tb, t0, garp(t, hw(3), "10.0.0.3"))
	local(t, tb, t0, na(t, hw(3), "fd00::3", "fd00::1", fS|fO))
	for _, f := range [][]byte{request(t, hw(1), "10.0.0.1", "10.0.0.3"), ns(t, hw(1), "fd00::1", "fd00::3"), dad(t, hw(1), "fd00::3")} {
		if d := local(t, tb, t0, f); d.Forward || d.Reply != nil {
			t.Fatalf("local target: %+v, want neither reply nor forward", d)
		}
	}
	if st := tb.Stats(); st.Suppressed != 3 || st.Answered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNotAnswered: requests that must reach the real host even though it
// is known: probes, unicast (reachability) requests, DAD, an IPv6 host
// whose router flag is unknown, stale entries.
func TestNotAnswered(t *testing.T) {
	tb := arp.NewTable(arp.Config{Age: time.Minute})
	mustRemote(t, tb, nodeB, garp(t, macRemote, "10.0.0.2"))
	mustRemote(t, tb, nodeB, na(t, macRemote, "fd00::2", "ff02::1", fO))
	mustRemote(t, tb, nodeB, ns(t, macRemote, "fd00::5", "fd00::9")) // role unknown
	g := solicited(ip("fd00::2"))
	for name, f := range map[string][]byte{
		"unicast request": arpFrame(t, 0, arp.OpRequest, macRemote, macLocal, "10.0.0.1", [6]byte{}, "10.0.0.2"),
		"probe":           arpFrame(t, 0, arp.OpRequest, bcast, macLocal, "0.0.0.0", [6]byte{}, "10.0.0.2"),
		"reply":           reply(t, macLocal, "10.0.0.1", macRemote, "10.0.0.2"),
		"dad":             dad(t, macLocal, "fd00::2"),
		"unicast ns": icmp6(t, macRemote, macLocal, 0, 255, ip("fd00::1"), ip("fd00::2"), arp.TypeNS,
			nsLayer("fd00::2", macLocal)),
		"wrong group": icmp6(t, multicastMAC(g), macLocal, 0, 255, ip("fd00::1"), ip("ff02::1"), arp.TypeNS,
			nsLayer("fd00::2", macLocal)),
		"role unknown": ns(t, macLocal, "fd00::1", "fd00::5"),
	} {
		if d := local(t, tb, t0, f); !d.Forward || d.Reply != nil {
			t.Errorf("%s: %+v, want forward only", name, d)
		}
	}
	// Stale: seen a minute ago, not yet expired.
	for _, f := range [][]byte{request(t, macLocal, "10.0.0.1", "10.0.0.2"), ns(t, macLocal, "fd00::1", "fd00::2")} {
		if d := local(t, tb, t0.Add(time.Minute), f); !d.Forward || d.Reply != nil {
			t.Errorf("stale target: %+v, want forward only", d)
		}
	}
	if st := tb.Stats(); st.Answered != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestNoLearning: probes, group MACs and addresses no host can own bind
// nothing.
func TestNoLearning(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	group := [6]byte{0x03, 0, 0, 0, 0, 1}
	for name, f := range map[string][]byte{
		"probe":         arpFrame(t, 0, arp.OpRequest, bcast, hw(1), "0.0.0.0", [6]byte{}, "10.0.0.1"),
		"dad":           dad(t, hw(1), "fd00::1"),
		"group mac":     garp(t, group, "10.0.0.1"),
		"zero mac":      arpFrame(t, 0, arp.OpReply, hw(9), [6]byte{}, "10.0.0.1", hw(9), "10.0.0.9"),
		"broadcast ip":  garp(t, hw(1), "255.255.255.255"),
		"this network":  garp(t, hw(1), "0.1.2.3"),
		"loopback":      garp(t, hw(1), "127.0.0.1"),
		"multicast ip":  garp(t, hw(1), "224.0.0.1"),
		"na group mac":  na(t, group, "fd00::1", "ff02::1", fO),
		"na mapped v4":  na(t, hw(1), "::ffff:10.0.0.1", "ff02::1", fO),
		"na loopback":   na(t, hw(1), "::1", "ff02::1", fO),
		"ns from group": ns(t, group, "fd00::1", "fd00::2"),
	} {
		if _, err := tb.Local(t0, f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := tb.Remote(t0, nodeB, f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if es := tb.Entries(t0); len(es) != 0 {
			t.Fatalf("%s: learned %+v", name, es)
		}
	}
	if err := tb.Remote(t0, nodeid.ID{}, garp(t, hw(1), "10.0.0.1")); !errors.Is(err, arp.ErrNodeID) {
		t.Errorf("Remote from the zero node: %v", err)
	}
	if tb.TakeAdvert() != nil || len(tb.FullAdvert().Hosts) != 0 {
		t.Error("adverts of nothing")
	}
}

// TestMoves: announcements (gratuitous ARP, unsolicited NA with Override)
// rebind an address to a new MAC and owner; the same MAC seen behind
// another node is the host itself, moved.
func TestMoves(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	mustRemote(t, tb, nodeB, garp(t, hw(2), "10.0.0.2"))
	mustRemote(t, tb, nodeB, na(t, hw(2), "fd00::2", "ff02::1", fO))
	t1 := t0.Add(time.Second)
	steps := []struct {
		from  nodeid.ID // zero: Local
		frame []byte
		ip    string
		mac   [6]byte
		via   string
	}{
		{nodeC, garp(t, hw(3), "10.0.0.2"), "10.0.0.2", hw(3), arp.ViaGARP},
		{nodeC, na(t, hw(3), "fd00::2", "ff02::1", fO|fR), "fd00::2", hw(3), arp.ViaUnsolicitedNA},
		{nodeB, request(t, hw(3), "10.0.0.2", "10.0.0.9"), "10.0.0.2", hw(3), arp.ViaARPRequest},
		{nodeid.ID{}, garp(t, hw(4), "10.0.0.2"), "10.0.0.2", hw(4), arp.ViaGARP},
		{nodeid.ID{}, na(t, hw(4), "fd00::2", "ff02::1", fO), "fd00::2", hw(4), arp.ViaUnsolicitedNA},
	}
	for i, s := range steps {
		var err error
		if s.from.IsZero() {
			_, err = tb.Local(t1, s.frame)
		} else {
			err = tb.Remote(t1, s.from, s.frame)
		}
		if err != nil {
			t.Fatal(err)
		}
		want(t, tb, t1, s.ip, s.mac, s.from, s.via)
		if e, _ := lookup(tb, t1, s.ip); !e.Learned.Equal(t1) {
			t.Errorf("step %d: learned %v", i, e.Learned)
		}
		if st := tb.Stats(); st.Moves != uint64(i+1) || st.Conflicts != 0 {
			t.Fatalf("step %d: stats %+v", i, st)
		}
	}
	if e, _ := lookup(tb, t1, "fd00::2"); e.Role != arp.RoleHost {
		t.Errorf("role %v after a new host's NA without R", e.Role)
	}
	a := tb.TakeAdvert()
	wantHosts := []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(4)}, {IP: ip("fd00::2"), MAC: hw(4), Role: arp.RoleHost}}
	if a == nil || !reflect.DeepEqual(a.Hosts, wantHosts) || a.Gone != nil {
		t.Fatalf("advert after moving here: %+v", a)
	}
}

// TestConflict: a different MAC without an announcement, or another
// owner's advert, is a conflict: counted, logged (once a minute per
// address) and refused.
func TestConflict(t *testing.T) {
	var logs bytes.Buffer
	tb := arp.NewTable(arp.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mustRemote(t, tb, nodeB, request(t, hw(2), "10.0.0.2", "10.0.0.9"))
	mustRemote(t, tb, nodeB, na(t, hw(2), "fd00::2", "fd00::9", fS|fO))
	mustRemote(t, tb, nodeC, request(t, hw(3), "10.0.0.2", "10.0.0.9"))
	mustRemote(t, tb, nodeC, reply(t, hw(3), "10.0.0.2", hw(9), "10.0.0.9"))
	local(t, tb, t0, reply(t, hw(4), "10.0.0.2", hw(9), "10.0.0.9"))
	mustRemote(t, tb, nodeC, na(t, hw(3), "fd00::2", "fd00::9", fS|fO)) // solicited: an answer, not an announcement
	mustRemote(t, tb, nodeC, na(t, hw(3), "fd00::2", "ff02::1", 0))     // unsolicited without Override
	mustRemote(t, tb, nodeC, ns(t, hw(3), "fd00::2", "fd00::9"))
	for _, h := range []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(3)}, {IP: ip("10.0.0.2"), MAC: hw(2)}} {
		if l := tb.Apply(t0, nodeC, &arp.Advert{Hosts: []arp.Host{h}}); l != nil {
			t.Errorf("advert of a bound address learned %v", l)
		}
	}
	want(t, tb, t0, "10.0.0.2", hw(2), nodeB, arp.ViaARPRequest)
	want(t, tb, t0, "fd00::2", hw(2), nodeB, arp.ViaNA)
	if st := tb.Stats(); st.Conflicts != 8 || st.Moves != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), "address conflict"); n != 2 {
		t.Fatalf("%d conflict logs, want one per address:\n%s", n, logs.String())
	}
	// A minute later the conflict is logged again.
	mustRemoteAt(t, tb, t0.Add(time.Minute), nodeC, request(t, hw(3), "10.0.0.2", "10.0.0.9"))
	if n := strings.Count(logs.String(), "address conflict"); n != 3 {
		t.Fatalf("%d conflict logs after a minute, want 3", n)
	}
}

// TestAgeing on a fake clock: an entry answers while seen within Age, and
// Expire drops it at Age; local ones then leave as Gone.
func TestAgeing(t *testing.T) {
	tb := arp.NewTable(arp.Config{Age: time.Minute})
	mustRemote(t, tb, nodeB, garp(t, macRemote, "10.0.0.2"))
	req := request(t, macLocal, "10.0.0.1", "10.0.0.2")
	if d := local(t, tb, t0.Add(59*time.Second), req); d.Reply == nil {
		t.Fatal("not answered within Age")
	}
	if d := local(t, tb, t0.Add(time.Minute), req); d.Reply != nil || !d.Forward {
		t.Fatal("answered at Age")
	}
	if err := tb.Remote(t0.Add(61*time.Second), nodeB, garp(t, macRemote, "10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	if d := local(t, tb, t0.Add(61*time.Second), req); d.Reply == nil {
		t.Fatal("not answered after a refresh")
	}
	if a := tb.TakeAdvert(); a == nil || len(a.Hosts) != 1 {
		t.Fatalf("advert of the requester: %+v", a)
	}
	tb.Expire(t0.Add(120 * time.Second))
	if n := len(tb.Entries(t0.Add(120 * time.Second))); n != 2 {
		t.Fatalf("%d entries before Age, want 2", n)
	}
	if a := tb.TakeAdvert(); a != nil {
		t.Fatalf("advert without change: %+v", a)
	}
	tb.Expire(t0.Add(121 * time.Second))
	if es := tb.Entries(t0); len(es) != 0 {
		t.Fatalf("entries after Age: %+v", es)
	}
	a := tb.TakeAdvert()
	if a == nil || a.Hosts != nil || !reflect.DeepEqual(a.Gone, []arp.Host{{IP: ip("10.0.0.1"), MAC: macLocal}}) {
		t.Fatalf("advert after expiry: %+v", a)
	}
}

// TestEviction: beyond MaxEntries the least recently seen entry goes,
// local or remote.
func TestEviction(t *testing.T) {
	tb := arp.NewTable(arp.Config{MaxEntries: 3})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	mustRemoteAt(t, tb, at(0), nodeB, garp(t, hw(1), "10.0.0.1"))
	mustRemoteAt(t, tb, at(1), nodeB, garp(t, hw(2), "10.0.0.2"))
	mustRemoteAt(t, tb, at(2), nodeB, garp(t, hw(3), "10.0.0.3"))
	mustRemoteAt(t, tb, at(3), nodeB, garp(t, hw(1), "10.0.0.1")) // refresh
	mustRemoteAt(t, tb, at(4), nodeC, garp(t, hw(4), "10.0.0.4")) // evicts .2
	local(t, tb, at(5), garp(t, hw(5), "10.0.0.5"))               // evicts .3
	var got []netip.Addr
	for _, e := range tb.Entries(at(5)) {
		got = append(got, e.IP)
	}
	if !reflect.DeepEqual(got, []netip.Addr{ip("10.0.0.1"), ip("10.0.0.4"), ip("10.0.0.5")}) {
		t.Fatalf("entries %v", got)
	}
	if st := tb.Stats(); st.Evicted != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func mustRemoteAt(t testing.TB, tb *arp.Table, now time.Time, from nodeid.ID, f []byte) {
	t.Helper()
	if err := tb.Remote(now, from, f); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveNode(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	tb.Apply(t0, nodeB, &arp.Advert{Full: true, Hosts: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(2)}, {IP: ip("fd00::2"), MAC: hw(2)}}})
	tb.Apply(t0, nodeC, &arp.Advert{Full: true, Hosts: []arp.Host{{IP: ip("10.0.0.3"), MAC: hw(3)}}})
	local(t, tb, t0, garp(t, hw(1), "10.0.0.1"))
	tb.RemoveNode(nodeid.ID{})
	tb.RemoveNode(nodeB)
	var got []netip.Addr
	for _, e := range tb.Entries(t0) {
		got = append(got, e.IP)
	}
	if !reflect.DeepEqual(got, []netip.Addr{ip("10.0.0.1"), ip("10.0.0.3")}) {
		t.Fatalf("after RemoveNode(B): %v", got)
	}
}
