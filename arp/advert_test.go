package arp_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// roundTrip encodes and decodes a, failing unless it comes back the same.
func roundTrip(t *testing.T, a *arp.Advert) {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %+v: %v", a, err)
	}
	if len(b) != a.Size() {
		t.Fatalf("size %d, encoded %d", a.Size(), len(b))
	}
	var back arp.Advert
	if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(&back, a) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, a, &back)
	}
}

// TestTakeAdvert: deltas carry each changed address once, with its
// current binding or, when it is no longer local, the one last told.
func TestTakeAdvert(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	if a := tb.TakeAdvert(); a != nil {
		t.Fatalf("empty table: %+v", a)
	}
	local(t, tb, t0, garp(t, hw(1), "10.0.0.1"))
	local(t, tb, t0, ns(t, hw(1), "fd00::1", "fd00::9"))
	local(t, tb, t0, na(t, hw(1), "fd00::1", "fd00::9", fS|fO)) // now we know it is a host
	a := tb.TakeAdvert()
	want := &arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}, {IP: ip("fd00::1"), MAC: hw(1), Role: arp.RoleHost}}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("first delta %+v", a)
	}
	roundTrip(t, a)
	local(t, tb, t0, request(t, hw(1), "10.0.0.1", "10.0.0.9")) // a refresh changes nothing
	if a := tb.TakeAdvert(); a != nil {
		t.Fatalf("delta without a change: %+v", a)
	}
	local(t, tb, t0, garp(t, hw(7), "10.0.0.1"))                // new MAC
	local(t, tb, t0, na(t, hw(1), "fd00::1", "ff02::1", fR|fO)) // now a router
	local(t, tb, t0, garp(t, hw(3), "10.0.0.3"))                // new, then
	tb.Expire(t0.Add(arp.DefaultAge).Add(-1))                   // (nothing aged yet)
	mustRemote(t, tb, nodeB, garp(t, hw(3), "10.0.0.3"))        // moved before we told: nothing to say
	a = tb.TakeAdvert()
	want = &arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(7)}, {IP: ip("fd00::1"), MAC: hw(1), Role: arp.RoleRouter}}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("second delta %+v", a)
	}
	mustRemote(t, tb, nodeB, garp(t, hw(7), "10.0.0.1")) // moved away
	a = tb.TakeAdvert()
	want = &arp.Advert{Gone: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(7)}}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("third delta %+v", a)
	}
	roundTrip(t, a)
	full := tb.FullAdvert()
	want = &arp.Advert{Full: true, Hosts: []arp.Host{{IP: ip("fd00::1"), MAC: hw(1), Role: arp.RoleRouter}}}
	if !reflect.DeepEqual(full, want) {
		t.Fatalf("full %+v", full)
	}
	roundTrip(t, full)
	if a := tb.TakeAdvert(); a != nil {
		t.Fatalf("FullAdvert made a delta: %+v", a)
	}
}

// TestApply: a peer's adverts bind its hosts, Apply reports what is newly
// bound, a full advert replaces the last one, Gone removes only what the
// peer itself bound.
func TestApply(t *testing.T) {
	tb := arp.NewTable(arp.Config{})
	h2, h2r := arp.Host{IP: ip("10.0.0.2"), MAC: hw(2)}, arp.Host{IP: ip("fd00::2"), MAC: hw(2), Role: arp.RoleRouter}
	full := &arp.Advert{Full: true, Hosts: []arp.Host{h2, h2r}}
	if l := tb.Apply(t0, nodeB, full); !reflect.DeepEqual(l, full.Hosts) {
		t.Fatalf("learned %v", l)
	}
	if l := tb.Apply(t0, nodeB, full); l != nil {
		t.Fatalf("learned again %v", l)
	}
	want(t, tb, t0, "fd00::2", hw(2), nodeB, arp.ViaAdvert)
	h2new := arp.Host{IP: ip("10.0.0.2"), MAC: hw(8)}
	if l := tb.Apply(t0, nodeB, &arp.Advert{Full: true, Hosts: []arp.Host{h2new}}); !reflect.DeepEqual(l, []arp.Host{h2new}) {
		t.Fatalf("learned %v", l) // the owner's word on its own host: a new MAC
	}
	if _, ok := lookup(tb, t0, "fd00::2"); ok {
		t.Fatal("full advert did not replace the last one")
	}
	tb.Apply(t0, nodeC, &arp.Advert{Gone: []arp.Host{h2new}})
	tb.Apply(t0, nodeB, &arp.Advert{Gone: []arp.Host{h2}})
	want(t, tb, t0, "10.0.0.2", hw(8), nodeB, arp.ViaAdvert)
	tb.Apply(t0, nodeB, &arp.Advert{Gone: []arp.Host{h2new}})
	if es := tb.Entries(t0); len(es) != 0 {
		t.Fatalf("after gone: %+v", es)
	}
	bad := []arp.Host{{IP: ip("224.0.0.1"), MAC: hw(1)}, {IP: ip("0.0.0.0"), MAC: hw(1)}, {IP: ip("10.0.0.1"), MAC: bcast}, {}}
	if l := tb.Apply(t0, nodeC, &arp.Advert{Hosts: bad}); l != nil || tb.Stats().Errors != 4 {
		t.Fatalf("invalid hosts: learned %v, stats %+v", l, tb.Stats())
	}
	if l := tb.Apply(t0, nodeid.ID{}, full); l != nil {
		t.Fatalf("advert from the zero node learned %v", l)
	}
}

func TestAdvertWire(t *testing.T) {
	// Golden encoding, so that the layout comment stays true.
	a := &arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}, {IP: ip("fe80::1"), MAC: hw(1), Role: arp.RoleRouter}},
		Gone: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(2)}}}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	golden := "01 00 0002 0001" +
		"00 02005e100001 0a000001" +
		"05 02005e100001 fe800000000000000000000000000001" +
		"00 02005e100002 0a000002"
	if got := hex.EncodeToString(b); got != strings.ReplaceAll(golden, " ", "") {
		t.Fatalf("encoding\n%s\nwant\n%s", got, golden)
	}
	roundTrip(t, a)
	roundTrip(t, &arp.Advert{Full: true})

	for name, c := range map[string]struct {
		a    arp.Advert
		want error
	}{
		"empty delta":       {arp.Advert{}, arp.ErrMalformed},
		"full with gone":    {arp.Advert{Full: true, Gone: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"unsorted":          {arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.2"), MAC: hw(1)}, {IP: ip("10.0.0.1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"duplicate":         {arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}, {IP: ip("10.0.0.1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"bound and gone":    {arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}}, Gone: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"ipv4 role":         {arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: hw(1), Role: arp.RoleHost}}}, arp.ErrMalformed},
		"gone role":         {arp.Advert{Gone: []arp.Host{{IP: ip("fd00::1"), MAC: hw(1), Role: arp.RoleHost}}}, arp.ErrMalformed},
		"bad role":          {arp.Advert{Hosts: []arp.Host{{IP: ip("fd00::1"), MAC: hw(1), Role: 3}}}, arp.ErrMalformed},
		"mapped":            {arp.Advert{Hosts: []arp.Host{{IP: ip("::ffff:10.0.0.1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"zone":              {arp.Advert{Hosts: []arp.Host{{IP: ip("fe80::1%eth0"), MAC: hw(1)}}}, arp.ErrMalformed},
		"multicast address": {arp.Advert{Hosts: []arp.Host{{IP: ip("ff02::1"), MAC: hw(1)}}}, arp.ErrMalformed},
		"group mac":         {arp.Advert{Hosts: []arp.Host{{IP: ip("10.0.0.1"), MAC: [6]byte{1}}}}, arp.ErrMalformed},
		"too many":          {arp.Advert{Full: true, Hosts: make([]arp.Host, arp.MaxHosts+1)}, arp.ErrLimit},
	} {
		if _, err := c.a.MarshalBinary(); !errors.Is(err, c.want) {
			t.Errorf("%s: marshal: %v, want %v", name, err, c.want)
		}
	}

	valid, _ := a.MarshalBinary()
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":        {nil, arp.ErrMalformed},
		"version":      {append([]byte{2}, valid[1:]...), arp.ErrVersion},
		"short header": {valid[:5], arp.ErrMalformed},
		"flags":        {patch(valid, 1, 0x02), arp.ErrMalformed},
		"record flags": {patch(valid, 6, 0x08), arp.ErrMalformed},
		"truncated":    {valid[:len(valid)-1], arp.ErrMalformed},
		"trailing":     {append(bytes.Clone(valid), 0), arp.ErrMalformed},
		"huge count":   {patch(patch(valid, 2, 0xff), 3, 0xff), arp.ErrLimit},
		"count lies":   {patch(valid, 3, 0x09), arp.ErrMalformed},
	} {
		var d arp.Advert
		if err := d.UnmarshalBinary(c.b); !errors.Is(err, c.want) || !reflect.DeepEqual(d, arp.Advert{}) {
			t.Errorf("%s: %v, %+v; want %v and a zero advert", name, err, d, c.want)
		}
	}
}

func patch(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}
