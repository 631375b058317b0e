package arp_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/deploy/fuzzseed"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The seed corpora under testdata/fuzz hold the frames of seeds below and,
// named kernel-*, frames the Linux kernel sent (arp_linux_test.go with
// -capture-seeds). TestFuzzSeeds fails if the generated files drift;
// regenerate them with
//
//	go test ./arp -run TestFuzzSeeds -update-seeds

// seeds returns the generated seeds of each fuzz target.
func seeds(t testing.TB) map[string]map[string][]byte {
	frames := map[string][]byte{
		"arp-request":      request(t, hw(1), "10.0.0.1", "10.0.0.2"),
		"arp-request-vlan": arpFrame(t, 42, 1, bcast, hw(1), "10.0.0.1", [6]byte{}, "10.0.0.2"),
		"arp-reply":        reply(t, hw(2), "10.0.0.2", hw(1), "10.0.0.1"),
		"arp-garp":         garp(t, hw(3), "10.0.0.3"),
		"arp-probe":        arpFrame(t, 0, 1, bcast, hw(1), "0.0.0.0", [6]byte{}, "10.0.0.2"),
		"ns":               ns(t, hw(1), "fd00::1", "fd00::2"),
		"ns-vlan":          nsVLAN(t, 7, hw(1), "fe80::1", "fd00::2"),
		"ns-hop-by-hop":    hopByHop(ns(t, hw(1), "fd00::1", "fd00::2")),
		"dad":              dad(t, hw(1), "fd00::1"),
		"na-solicited":     na(t, hw(2), "fd00::2", "fd00::1", fS|fO),
		"na-unsolicited":   na(t, hw(3), "fd00::3", "ff02::1", fR|fO),
	}
	out := map[string]map[string][]byte{"FuzzParseARP": {}, "FuzzParseND": {}, "FuzzLocal": frames}
	for name, f := range frames {
		if strings.HasPrefix(name, "arp") {
			out["FuzzParseARP"][name] = f
		} else {
			out["FuzzParseND"][name] = f
		}
	}
	adverts := map[string]*arp.Advert{
		"full-empty": {Full: true},
		"full": {Full: true, Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}, {IP: ip("fd00::1"), MAC: hw(1), Role: arp.RoleHost},
			{IP: ip("fe80::1"), MAC: hw(1), Role: arp.RoleRouter}}},
		"delta": {Hosts: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(2)}}, Gone: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}, {IP: ip("fd00::1"), MAC: hw(1)}}},
	}
	out["FuzzAdvert"] = map[string][]byte{}
	for name, a := range adverts {
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out["FuzzAdvert"][name] = b
	}
	return out
}

func TestFuzzSeeds(t *testing.T) {
	for target, files := range seeds(t) {
		fuzzseed.Check(t, target, files)
	}
}

// oneSentinel checks that err wraps exactly one of the package's errors.
func oneSentinel(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range []error{arp.ErrTruncated, arp.ErrMalformed, arp.ErrChecksum, arp.ErrNotLocal,
		arp.ErrNotNeighbor, arp.ErrUnsupported, arp.ErrVersion, arp.ErrLimit, arp.ErrNodeID} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v wraps %d sentinels", err, n)
	}
}

// FuzzParseARP: no panic; what parses re-encodes to the same bytes, up to
// Ethernet padding.
func FuzzParseARP(f *testing.F) {
	for _, b := range seeds(f)["FuzzParseARP"] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := arp.ParseARP(b)
		if err != nil {
			oneSentinel(t, err)
			if a != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		if enc := a.AppendFrame(nil); !bytes.HasPrefix(b, enc) {
			t.Fatalf("re-encoded\n% x\nfrom\n% x", enc, b)
		}
	})
}

// FuzzParseND: no panic; what parses re-encodes (without extension
// headers, padding and unknown options) to a frame that parses the same.
func FuzzParseND(f *testing.F) {
	for _, b := range seeds(f)["FuzzParseND"] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Also parse a copy with the checksum made right, so that the
		// fuzzer explores the structure, not just the checksum check.
		fuzzParseND(t, withSum(bytes.Clone(b)))
		fuzzParseND(t, b)
	})
}

func fuzzParseND(t *testing.T, b []byte) {
	n, err := arp.ParseND(b)
	if err != nil {
		oneSentinel(t, err)
		if n != nil {
			t.Fatal("a result with an error")
		}
		return
	}
	back, err := arp.ParseND(n.AppendFrame(nil))
	if err != nil || !reflect.DeepEqual(back, n) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, n, back)
	}
}

// FuzzAdvert: no panic; decoding is canonical (what decodes re-encodes to
// the same bytes) and bounded by the input; a table takes what decodes.
func FuzzAdvert(f *testing.F) {
	for _, b := range seeds(f)["FuzzAdvert"] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a arp.Advert
		if err := a.UnmarshalBinary(b); err != nil {
			oneSentinel(t, err)
			if !reflect.DeepEqual(a, arp.Advert{}) {
				t.Fatalf("refused with %v but left %+v", err, a)
			}
			return
		}
		enc, err := a.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) || a.Size() != len(b) {
			t.Fatalf("re-encoded (%v)\n% x\nfrom\n% x", err, enc, b)
		}
		tb := arp.NewTable(arp.Config{})
		learned := tb.Apply(t0, nodeB, &a)
		if len(learned) != len(a.Hosts) || tb.Stats().Errors != 0 {
			t.Fatalf("a fresh table learned %d of %d hosts, stats %+v", len(learned), len(a.Hosts), tb.Stats())
		}
	})
}

// FuzzLocal: arbitrary frames into Local and Remote never panic; a reply
// is a well-formed answer from a host the table knows, and is not also
// forwarded.
func FuzzLocal(f *testing.F) {
	for _, b := range seeds(f)["FuzzLocal"] {
		f.Add(b)
	}
	known := map[[6]byte]bool{hw(2): true}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb := arp.NewTable(arp.Config{})
		tb.Apply(t0, nodeB, &arp.Advert{Full: true, Hosts: []arp.Host{
			{IP: ip("10.0.0.2"), MAC: hw(2)}, {IP: ip("fd00::2"), MAC: hw(2), Role: arp.RoleHost}}})
		for _, frame := range [][]byte{b, withSum(bytes.Clone(b))} {
			d, err := tb.Local(t0, frame)
			if err != nil {
				oneSentinel(t, err)
			}
			if d.Reply != nil {
				if d.Forward {
					t.Fatal("answered and forwarded")
				}
				a, aerr := arp.ParseARP(d.Reply)
				n, nerr := arp.ParseND(d.Reply)
				switch {
				case aerr == nil && a.Op == arp.OpReply && known[a.SenderMAC] && a.Eth.Src == a.SenderMAC:
				case nerr == nil && n.Type == arp.TypeNA && n.Solicited && !n.Override && known[n.LinkAddr] && n.Eth.Src == n.LinkAddr:
				default:
					t.Fatalf("reply % x: %v, %v", d.Reply, aerr, nerr)
				}
			}
			if err := tb.Remote(t0, nodeC, frame); err != nil {
				oneSentinel(t, err)
			}
		}
		tb.TakeAdvert()
	})
}

// FuzzAdvertSequence applies a sequence of adverts, each from one of
// three nodes, to a table that already holds a local host and another
// node's host (a member advertising whatever it likes, in any order), and
// removals and expiry in between. Nothing may panic; a host on this
// node's own segment is never taken over by an advert; entries belong
// only to nodes that advertised them and were not removed; the table
// stays within its bound.
func FuzzAdvertSequence(f *testing.F) {
	adv := func(a *arp.Advert) []byte {
		b, err := a.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	item := func(node byte, b []byte) []byte { return append([]byte{node, byte(len(b) >> 8), byte(len(b))}, b...) }
	f.Add(append(item(0, adv(&arp.Advert{Full: true, Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(9)}}})),
		item(1, adv(&arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.7"), MAC: hw(9)}}, Gone: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(2)}}}))...))
	f.Add(append(item(2, adv(&arp.Advert{Full: true})), item(0xf1, nil)...))
	local, localMAC := ip("10.0.0.1"), hw(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := arp.NewTable(arp.Config{MaxEntries: 64})
		now := t0
		if _, err := tb.Local(now, garp(t, localMAC, "10.0.0.1")); err != nil {
			t.Fatal(err)
		}
		tb.Apply(now, nodeB, &arp.Advert{Full: true, Hosts: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(2)}}})
		owners := map[nodeid.ID]bool{nodeB: true}
		for len(data) >= 3 {
			sel, n := data[0], int(data[1])<<8|int(data[2])
			data = data[3:]
			n = min(n, len(data))
			body := data[:n]
			data = data[n:]
			from := node(byte(2 + sel%3))
			switch sel & 0xf0 {
			case 0xf0:
				tb.RemoveNode(from)
				delete(owners, from)
				continue
			case 0xe0:
				now = now.Add(time.Duration(n) * time.Second)
				tb.Expire(now)
				continue
			}
			var a arp.Advert
			if a.UnmarshalBinary(body) != nil {
				continue
			}
			tb.Apply(now, from, &a)
			owners[from] = true
		}
		es := tb.Entries(now)
		if len(es) > 64 {
			t.Fatalf("%d entries in a table bounded at 64", len(es))
		}
		for _, e := range es {
			if e.IP == local && now.Sub(t0) < time.Minute && (!e.Local || e.MAC != localMAC) {
				t.Fatalf("the local host %s was taken over: %+v", local, e)
			}
			if !e.Local && !owners[e.Owner] {
				t.Fatalf("entry %s owned by %x, which advertised nothing or was removed", e.IP, e.Owner[:2])
			}
		}
	})
}
