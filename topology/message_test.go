package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// sampleMessages are valid messages of every kind and family; the fuzz
// seeds are their encodings.
func sampleMessages() map[string]*Message {
	return map[string]*Message{
		"sync":       {Kind: KindSync, Epoch: 7, Seq: 3},
		"full-empty": {Kind: KindFull, Epoch: 0xfeedface, Refresh: 30 * time.Second},
		"full": {Kind: KindFull, Epoch: 1, Seq: 12, Refresh: time.Minute, Groups: []Group{
			{ip("224.0.1.129"), excl()},
			{ip("232.1.1.1"), incl("10.0.0.1", "192.0.2.7")},
			{ip("239.255.255.250"), excl("10.0.0.66")},
			{ip("ff05::1:3"), excl()},
			{ip("ff3e::8000:1"), incl("2001:db8::1", "fd00::1")},
		}},
		"delta-leave": {Kind: KindDelta, Epoch: 1, Seq: 13, Refresh: time.Second, Groups: []Group{
			{ip("232.1.1.1"), incl()},
		}},
		"delta-v6": {Kind: KindDelta, Epoch: 1<<64 - 1, Seq: 1<<64 - 1, Refresh: MaxRefresh, Groups: []Group{
			{ip("ff0e::101"), excl("2001:db8::2")},
		}},
		"part": {Kind: KindPart, Epoch: 1, Seq: 12, Refresh: time.Minute, Part: 1, Parts: 3, Groups: []Group{
			{ip("232.1.1.1"), incl("10.0.0.1", "192.0.2.7")},
			{ip("ff3e::8000:1"), excl()},
		}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		got := mustRoundTrip(t, m)
		if !messagesEqual(got, m) {
			t.Errorf("%s: decoded %+v, sent %+v", name, got, m)
		}
	}
}

// The layout comment promises 7 bytes for an IPv4 any-source group.
func TestMessageLayout(t *testing.T) {
	m := &Message{Kind: KindDelta, Epoch: 0x0102030405060708, Seq: 9, Refresh: 30 * time.Second,
		Groups: []Group{{ip("239.1.2.3"), excl()}, {ip("ff3e::1"), incl("fd00::1")}}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 9, 0, 30, 0, 2,
		flagExclude, 239, 1, 2, 3, 0, 0,
		flagIPv6, 0xff, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
}

// Every rule of the layout, broken once. MarshalBinary and
// UnmarshalBinary must both refuse, with the right sentinel.
func TestMessageInvalid(t *testing.T) {
	full := func(groups ...Group) *Message {
		return &Message{Kind: KindFull, Seq: 1, Refresh: time.Second, Groups: groups}
	}
	delta := func(groups ...Group) *Message {
		return &Message{Kind: KindDelta, Seq: 1, Refresh: time.Second, Groups: groups}
	}
	tooMany := full()
	for a, i := ip("239.0.0.1"), 0; i <= MaxGroups; a, i = a.Next(), i+1 {
		tooMany.Groups = append(tooMany.Groups, Group{a, excl()})
	}
	manySrc := excl()
	for a, i := ip("10.0.0.1"), 0; i <= MaxSources; a, i = a.Next(), i+1 {
		manySrc.Sources = append(manySrc.Sources, a)
	}
	for _, tc := range []struct {
		name string
		m    *Message
		want error
	}{
		{"kind 0", &Message{Refresh: time.Second}, ErrMalformed},
		{"kind 5", &Message{Kind: 5, Refresh: time.Second}, ErrMalformed},
		{"part of 1", &Message{Kind: KindPart, Seq: 1, Refresh: time.Second, Parts: 1, Groups: []Group{{ip("239.0.0.1"), excl()}}}, ErrLimit},
		{"part of too many", &Message{Kind: KindPart, Seq: 1, Refresh: time.Second, Parts: MaxParts + 1, Groups: []Group{{ip("239.0.0.1"), excl()}}}, ErrLimit},
		{"part past the last", &Message{Kind: KindPart, Seq: 1, Refresh: time.Second, Part: 2, Parts: 2, Groups: []Group{{ip("239.0.0.1"), excl()}}}, ErrMalformed},
		{"empty part", &Message{Kind: KindPart, Seq: 1, Refresh: time.Second, Parts: 2}, ErrMalformed},
		{"INCLUDE{} in a part", &Message{Kind: KindPart, Seq: 1, Refresh: time.Second, Parts: 2, Groups: []Group{{ip("239.0.0.1"), incl()}}}, ErrMalformed},
		{"full with a part number", &Message{Kind: KindFull, Refresh: time.Second, Part: 1, Parts: 2}, ErrMalformed},
		{"refresh 0", &Message{Kind: KindFull}, ErrLimit},
		{"refresh fraction", &Message{Kind: KindFull, Refresh: 1500 * time.Millisecond}, ErrMalformed},
		{"refresh too long", &Message{Kind: KindFull, Refresh: MaxRefresh + time.Second}, ErrLimit},
		{"sync with refresh", &Message{Kind: KindSync, Refresh: time.Second}, ErrMalformed},
		{"sync with groups", &Message{Kind: KindSync, Groups: []Group{{ip("239.0.0.1"), excl()}}}, ErrMalformed},
		{"empty delta", delta(), ErrMalformed},
		{"delta seq 0", &Message{Kind: KindDelta, Refresh: time.Second, Groups: []Group{{ip("239.0.0.1"), excl()}}}, ErrMalformed},
		{"too many groups", tooMany, ErrLimit},
		{"too many sources", full(Group{ip("239.0.0.1"), manySrc}), ErrLimit},
		{"unicast group", full(Group{ip("10.0.0.1"), excl()}), ErrMalformed},
		{"4-in-6 group", full(Group{ip("::ffff:239.0.0.1"), excl()}), ErrMalformed},
		{"zoned group", full(Group{ip("ff02::1%eth0"), excl()}), ErrMalformed},
		{"groups out of order", full(Group{ip("239.0.0.2"), excl()}, Group{ip("239.0.0.1"), excl()}), ErrMalformed},
		{"group twice", delta(Group{ip("239.0.0.1"), excl()}, Group{ip("239.0.0.1"), incl()}), ErrMalformed},
		{"unknown mode", full(Group{ip("239.0.0.1"), filter.Filter{Mode: 2}}), ErrMalformed},
		{"INCLUDE{} in full", full(Group{ip("239.0.0.1"), incl()}), ErrMalformed},
		{"v6 source in v4 group", full(Group{ip("239.0.0.1"), incl("fd00::1")}), ErrMalformed},
		{"v4 source in v6 group", full(Group{ip("ff3e::1"), incl("::ffff:10.0.0.1")}), ErrMalformed},
		{"multicast source", full(Group{ip("239.0.0.1"), incl("239.0.0.2")}), ErrMalformed},
		{"unspecified source", full(Group{ip("ff3e::1"), excl("::")}), ErrMalformed},
		{"sources out of order", full(Group{ip("239.0.0.1"), incl("10.0.0.2", "10.0.0.1")}), ErrMalformed},
		{"source twice", full(Group{ip("239.0.0.1"), excl("10.0.0.1", "10.0.0.1")}), ErrMalformed},
	} {
		if _, err := tc.m.MarshalBinary(); !errors.Is(err, tc.want) {
			t.Errorf("%s: MarshalBinary: %v, want %v", tc.name, err, tc.want)
		}
		// Encode without checks and make sure the decoder refuses too.
		if b := rawEncode(tc.m); b != nil {
			var m Message
			if err := m.UnmarshalBinary(b); !errors.Is(err, tc.want) {
				t.Errorf("%s: UnmarshalBinary: %v, want %v", tc.name, err, tc.want)
			}
		}
	}
}

// rawEncode encodes m like MarshalBinary but without validation, or nil
// when m cannot be put in the layout at all (zones, unknown modes).
func rawEncode(m *Message) []byte {
	b := []byte{wireVersion, byte(m.Kind)}
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(m.Refresh/time.Second))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Groups)))
	if m.Refresh%time.Second != 0 || m.Refresh > MaxRefresh || m.Kind != KindPart && m.Parts != 0 {
		return nil
	}
	if m.Kind == KindPart {
		b = binary.BigEndian.AppendUint16(b, uint16(m.Part))
		b = binary.BigEndian.AppendUint16(b, uint16(m.Parts))
	}
	for _, g := range m.Groups {
		if g.Addr.Zone() != "" || g.Filter.Mode > filter.Exclude {
			return nil
		}
		flags := byte(g.Filter.Mode) << 1
		if g.Addr.Is6() {
			flags |= flagIPv6
		}
		b = appendAddr(append(b, flags), g.Addr)
		b = binary.BigEndian.AppendUint16(b, uint16(len(g.Filter.Sources)))
		for _, s := range g.Filter.Sources {
			if s.BitLen() != g.Addr.BitLen() {
				return nil // the layout has no room for a family mix
			}
			b = appendAddr(b, s)
		}
	}
	return b
}

func TestUnmarshalBytes(t *testing.T) {
	good, _ := sampleMessages()["full"].MarshalBinary()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 2", append([]byte{2}, good[1:]...), ErrVersion},
		{"short header", good[:headerLen-1], ErrMalformed},
		{"truncated group", good[:headerLen+3], ErrMalformed},
		{"truncated source", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"unknown flag", func() []byte { b := bytes.Clone(good); b[headerLen] |= 0x80; return b }(), ErrMalformed},
	} {
		var m Message
		m.Seq = 99
		if err := m.UnmarshalBinary(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if m.Seq != 0 || m.Groups != nil {
			t.Errorf("%s: message not zeroed after error: %+v", tc.name, m)
		}
	}
}

// Hostile counts must cost nothing before the bytes behind them are seen:
// a 22-byte header claiming MaxGroups groups, and a group claiming
// MaxSources IPv6 sources, each allocate next to nothing.
func TestUnmarshalBoundedMemory(t *testing.T) {
	// header returns a full state's header claiming n groups.
	header := func(n uint16) []byte {
		b := rawEncode(&Message{Kind: KindFull, Refresh: time.Second})
		return binary.BigEndian.AppendUint16(b[:headerLen-2], n)
	}
	manyGroups := append(header(MaxGroups), make([]byte, minGroupLen)...)
	oneGroup := header(1)
	manySources := appendAddr(append(oneGroup, flagIPv6|flagExclude), ip("ff3e::1"))
	manySources = binary.BigEndian.AppendUint16(manySources, MaxSources)
	manySources = append(manySources, make([]byte, 15)...)
	for name, b := range map[string][]byte{"groups": manyGroups, "sources": manySources} {
		var m Message
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			if err := m.UnmarshalBinary(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		runtime.ReadMemStats(&after)
		// The error text is all that may be allocated: well under 1 KiB
		// per decode, against 48 KiB for the groups or 6 KiB for the
		// sources the counts claim.
		if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 1024 {
			t.Errorf("%s: %d bytes allocated per refused decode", name, per)
		}
	}
}
