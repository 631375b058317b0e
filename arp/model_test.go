package arp_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// model is the naive table: a map, linear scans, the rules of learnLocked
// spelled out once more. The clock moves at every step, so "least recently
// seen" has no ties.
type model struct {
	age     time.Duration
	max     int
	entries map[netip.Addr]*arp.Entry
	touched map[netip.Addr]int // when last seen, in steps of a counter: Apply sees several at one now
	clock   int
	stats   arp.Stats
}

func (m *model) learn(now time.Time, a netip.Addr, mac [6]byte, owner nodeid.ID, via string, role arp.Role, override, advert bool) bool {
	if a.Is4() {
		role = arp.RoleUnknown
	}
	e := m.entries[a]
	switch {
	case e == nil:
		if len(m.entries) >= m.max {
			var old *arp.Entry
			for _, x := range m.entries {
				if old == nil || m.touched[x.IP] < m.touched[old.IP] {
					old = x
				}
			}
			delete(m.entries, old.IP)
			m.stats.Evicted++
		}
		m.entries[a] = &arp.Entry{IP: a, MAC: mac, Owner: owner, Local: owner.IsZero(), Role: role, Via: via, Learned: now, Seen: now}
		m.touch(a)
		return true
	case e.MAC == mac && e.Owner == owner:
		m.touch(a)
		e.Seen = now
		if role != arp.RoleUnknown {
			e.Role = role
		}
		return false
	case e.MAC != mac && !override && !(advert && e.Owner == owner), e.MAC == mac && advert:
		m.stats.Conflicts++
		return false
	}
	m.stats.Moves++
	m.touch(a)
	if e.MAC != mac || role != arp.RoleUnknown {
		e.Role = role
	}
	*e = arp.Entry{IP: a, MAC: mac, Owner: owner, Local: owner.IsZero(), Role: e.Role, Via: via, Learned: now, Seen: now}
	return true
}

func (m *model) touch(a netip.Addr) {
	m.clock++
	m.touched[a] = m.clock
}

func (m *model) fresh(now time.Time, e *arp.Entry) bool { return now.Sub(e.Seen) < m.age }

// decide is what Local does with a broadcast request or multicast NS.
func (m *model) decide(now time.Time, target netip.Addr) (fwd bool, reply *arp.Entry) {
	e := m.entries[target]
	switch {
	case e == nil:
	case e.Local:
		m.stats.Suppressed++
		return false, nil
	case m.fresh(now, e) && (target.Is4() || e.Role != arp.RoleUnknown):
		m.stats.Answered++
		return false, e
	}
	m.stats.Forwarded++
	return true, nil
}

// TestModel runs random frames, adverts, removals and expiries through a
// Table and the model and compares entries, decisions and counters after
// every step; deltas applied to a peer's view always give the full advert.
func TestModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	cfg := arp.Config{Age: time.Minute, MaxEntries: 8}
	tb, m := arp.NewTable(cfg), &model{age: cfg.Age, max: cfg.MaxEntries, entries: map[netip.Addr]*arp.Entry{},
		touched: map[netip.Addr]int{}}
	v4 := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	v6 := []string{"fd00::1", "fd00::2", "fd00::3", "fe80::4"}
	nodes := []nodeid.ID{{}, nodeB, nodeC}
	peer := map[netip.Addr]arp.Host{} // a peer's view of our local hosts, from deltas
	now := t0
	defer func() { t.Logf("final stats %+v", m.stats) }()
	for step := range 400 {
		now = now.Add(time.Duration(1+r.IntN(20_000)) * time.Millisecond)
		from := nodes[r.IntN(len(nodes))]
		mac := hw(byte(1 + r.IntN(4)))
		a4, b4 := v4[r.IntN(len(v4))], v4[r.IntN(len(v4))]
		a6, b6 := v6[r.IntN(len(v6))], v6[r.IntN(len(v6))]
		var frame []byte
		// kind: 0 Local just forwards; 1 a request it may answer; 2 a DAD
		// probe, suppressed if its target is local. target is its target.
		var kind int
		var target netip.Addr
		switch op := r.IntN(12); op {
		case 0, 1: // broadcast request
			frame, target, kind = request(t, mac, a4, b4), ip(b4), 1
			via := arp.ViaARPRequest
			if a4 == b4 {
				kind, via = 0, arp.ViaGARP
			}
			m.learn(now, ip(a4), mac, from, via, 0, a4 == b4, false)
		case 2:
			frame = garp(t, mac, a4)
			m.learn(now, ip(a4), mac, from, arp.ViaGARP, 0, true, false)
		case 3:
			frame = reply(t, mac, a4, hw(9), b4)
			via := arp.ViaARPReply
			if a4 == b4 {
				via = arp.ViaGARP
			}
			m.learn(now, ip(a4), mac, from, via, 0, a4 == b4, false)
		case 4, 5: // multicast NS
			frame, kind, target = ns(t, mac, a6, b6), 1, ip(b6)
			m.learn(now, ip(a6), mac, from, arp.ViaNS, 0, false, false)
		case 6: // NA, solicited or not, router or not
			flags := []uint8{fS | fO, fS, fO, 0, fR | fO, fR | fS | fO}[r.IntN(6)]
			dst, via := "fd00::99", arp.ViaNA
			if flags&fS == 0 {
				dst, via = "ff02::1", arp.ViaUnsolicitedNA
			}
			frame = na(t, mac, a6, dst, flags)
			role := arp.RoleHost
			if flags&fR != 0 {
				role = arp.RoleRouter
			}
			m.learn(now, ip(a6), mac, from, via, role, flags&(fS|fO) == fO, false)
		case 7: // DAD and probes bind nothing
			frame, kind, target = dad(t, mac, a6), 2, ip(a6)
		case 8: // an advert from a peer
			if from.IsZero() {
				from = nodeB
			}
			adv := &arp.Advert{Full: r.IntN(2) == 0}
			for _, s := range append(v4[:3:3], v6[:2]...) {
				h := arp.Host{IP: ip(s), MAC: hw(byte(1 + r.IntN(4)))}
				if h.IP.Is6() {
					h.Role = arp.Role(r.IntN(3))
				}
				switch r.IntN(3) {
				case 0:
					adv.Hosts = append(adv.Hosts, h)
				case 1:
					if !adv.Full {
						adv.Gone = append(adv.Gone, arp.Host{IP: h.IP, MAC: h.MAC})
					}
				}
			}
			var want []arp.Host
			listed := map[netip.Addr]bool{}
			for _, h := range adv.Hosts {
				listed[h.IP] = true
				if m.learn(now, h.IP, h.MAC, from, arp.ViaAdvert, h.Role, false, true) {
					want = append(want, *entryHost(m.entries[h.IP]))
				}
			}
			for a, e := range m.entries {
				if adv.Full && e.Owner == from && !listed[a] {
					delete(m.entries, a)
				}
			}
			for _, h := range adv.Gone {
				if e := m.entries[h.IP]; e != nil && e.Owner == from && e.MAC == h.MAC {
					delete(m.entries, h.IP)
				}
			}
			if got := tb.Apply(now, from, adv); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: Apply learned %v, want %v", step, got, want)
			}
		case 9:
			tb.RemoveNode(from)
			for a, e := range m.entries {
				if !from.IsZero() && e.Owner == from {
					delete(m.entries, a)
				}
			}
		case 10:
			tb.Expire(now)
			for a, e := range m.entries {
				if !m.fresh(now, e) {
					delete(m.entries, a)
				}
			}
		case 11:
			if a := tb.TakeAdvert(); a != nil {
				for _, h := range a.Hosts {
					peer[h.IP] = h
				}
				for _, h := range a.Gone {
					if peer[h.IP].MAC != h.MAC {
						t.Fatalf("step %d: gone %v, the peer has %v", step, h, peer[h.IP])
					}
					delete(peer, h.IP)
				}
			}
			full := map[netip.Addr]arp.Host{}
			for _, h := range tb.FullAdvert().Hosts {
				full[h.IP] = h
			}
			if !reflect.DeepEqual(peer, full) {
				t.Fatalf("step %d: deltas add up to\n%v\nfull advert\n%v", step, peer, full)
			}
		}
		if frame != nil {
			checkFrame(t, step, tb, m, now, from, frame, kind, target)
		}
		// Entries(t0) lists stale entries too: every Seen is after t0.
		var all, want []arp.Entry
		for _, e := range m.entries {
			all = append(all, *e)
			if m.fresh(now, e) {
				want = append(want, *e)
			}
		}
		sortEntries(all)
		sortEntries(want)
		if got := tb.Entries(t0); !reflect.DeepEqual(got, all) && len(got)+len(all) > 0 {
			t.Fatalf("step %d: all entries\n%+v\nwant\n%+v", step, got, all)
		}
		if got := tb.Entries(now); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("step %d: fresh entries\n%+v\nwant\n%+v", step, got, want)
		}
		if got := tb.Stats(); got != m.stats {
			t.Fatalf("step %d: stats %+v, want %+v", step, got, m.stats)
		}
	}
}

// checkFrame feeds frame to Local (from is zero) or Remote and checks the
// decision against the model, which has already learned from it.
func checkFrame(t *testing.T, step int, tb *arp.Table, m *model, now time.Time, from nodeid.ID, frame []byte, kind int, target netip.Addr) {
	t.Helper()
	if !from.IsZero() {
		if err := tb.Remote(now, from, frame); err != nil {
			t.Fatal(err)
		}
		return
	}
	d, err := tb.Local(now, frame)
	if err != nil {
		t.Fatal(err)
	}
	fwd, rep := true, (*arp.Entry)(nil)
	if kind == 1 {
		fwd, rep = m.decide(now, target)
	} else if e := m.entries[target]; kind == 2 && e != nil && e.Local {
		fwd = false
		m.stats.Suppressed++
	} else {
		m.stats.Forwarded++
	}
	if d.Forward != fwd || (d.Reply != nil) != (rep != nil) {
		t.Fatalf("step %d: decision forward %v reply %v, want %v %v", step, d.Forward, d.Reply != nil, fwd, rep)
	}
	if rep != nil && !bytesHasMAC(d.Reply, rep.MAC) {
		t.Fatalf("step %d: reply % x is not from %v", step, d.Reply, hwAddr(rep.MAC))
	}
}

func bytesHasMAC(f []byte, mac [6]byte) bool { return len(f) > 12 && [6]byte(f[6:12]) == mac }

func entryHost(e *arp.Entry) *arp.Host { return &arp.Host{IP: e.IP, MAC: e.MAC, Role: e.Role} }

func sortEntries(es []arp.Entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].IP.Less(es[j-1].IP); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// TestConcurrent: the TAP reader, the socket reader and the control loop
// call the table at once (run with -race).
func TestConcurrent(t *testing.T) {
	tb := arp.NewTable(arp.Config{MaxEntries: 16})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				now := t0.Add(time.Duration(i) * time.Second)
				a := fmt.Sprintf("10.0.%d.%d", g, i%20+1)
				switch g {
				case 0:
					tb.Local(now, request(t, hw(byte(i%5+1)), a, "10.0.9.9"))
					tb.Local(now, ns(t, hw(byte(i%5+1)), fmt.Sprintf("fd00::%d", i%20+1), "fd00::99"))
				case 1:
					tb.Remote(now, nodeB, garp(t, hw(byte(i%5+10)), a))
				case 2:
					tb.Apply(now, nodeC, &arp.Advert{Hosts: []arp.Host{{IP: ip(a), MAC: hw(30)}}})
					tb.RemoveNode(nodeB)
				default:
					tb.Expire(now)
					tb.TakeAdvert()
					tb.FullAdvert()
					tb.Entries(now)
					tb.Stats()
				}
			}
		})
	}
	wg.Wait()
}
