package igmp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// The seed corpora hold, besides the f.Add seeds below, frames the Linux
// kernel sent (captured by igmp_linux_test.go with -capture-seeds).

// payload returns the IGMP or ICMPv6 payload of a frame we built.
func payload(t testing.TB, f []byte) []byte {
	p, err := parseFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return p.payload
}

// FuzzParseIGMP: no panic; what parses re-encodes to the same message.
func FuzzParseIGMP(f *testing.F) {
	for _, c := range wireCases {
		if !c.m.Type.IsMLD() {
			f.Add(payload(f, frame(f, hostMAC, c.src, c.dst, &c.m)))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Also parse a copy with the checksum made right, so the fuzzer
		// explores the structure, not just the checksum check.
		if len(b) >= 4 {
			fuzzParseIGMP(t, withSum(slices.Clone(b)))
		}
		fuzzParseIGMP(t, b)
	})
}

func fuzzParseIGMP(t *testing.T, b []byte) {
	m, err := ParseIGMP(b)
	if err != nil {
		if !knownError(err) {
			t.Fatalf("error of no known kind: %v", err)
		}
		return
	}
	enc, err := m.AppendIGMP(nil)
	if err != nil {
		t.Fatalf("parsed %v but cannot encode it: %v", m, err)
	}
	back, err := ParseIGMP(enc)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, m, back)
	}
	_ = m.String()
}

// FuzzParseMLD: no panic; what parses re-encodes to the same message, and
// the checksum check of ParseMLDPacket is the only difference.
func FuzzParseMLD(f *testing.F) {
	for _, c := range wireCases {
		if c.m.Type.IsMLD() {
			f.Add(payload(f, frame(f, hostMAC, c.src, c.dst, &c.m)))
		}
	}
	src, dst := ip("fe80::1"), ip("ff02::16")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMLD(b)
		if _, perr := ParseMLDPacket(src, dst, b); perr == nil && err != nil {
			t.Fatalf("ParseMLDPacket accepts what ParseMLD refuses: %v", err)
		}
		if err != nil {
			if !knownError(err) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		enc, err := m.AppendMLD(nil, src, dst)
		if err != nil {
			t.Fatalf("parsed %v but cannot encode it: %v", m, err)
		}
		back, err := ParseMLDPacket(src, dst, enc)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, m, back)
		}
	})
}

// FuzzInput feeds a frame to a router that already has groups in every
// mode and compatibility state: no panic, errors of known kinds, a
// consistent table, valid queries, and everything expires in the end.
func FuzzInput(f *testing.F) {
	for _, c := range wireCases {
		f.Add(frame(f, hostMAC, c.src, c.dst, &c.m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzInput(t, b)
		if fixed := fixChecksums(b); fixed != nil {
			fuzzInput(t, fixed)
		}
	})
}

func fuzzInput(t *testing.T, b []byte) {
	g := newRig(t, testConfig())
	g.at(time.Second)
	g.send(h2, grp, v2report(grp))
	g.v3(rec(ModeIsExclude, ip("239.2.2.2"), sa), rec(AllowNewSources, ip("232.1.1.1"), sa, sb))
	g.v3(rec(ChangeToExcludeMode, grp6, ip("2001:db8::1")))
	g.events = nil
	if err := g.r.Input(g.now, b); err != nil && !knownError(err) {
		t.Fatalf("error of no known kind: %v", err)
	}
	g.out() // checks every query the frame provoked
	for _, e := range g.r.TakeEvents() {
		if !e.Filter.Equal(g.r.Filter(e.Group)) {
			t.Fatalf("event %v, Filter says %v", e, g.r.Filter(e.Group))
		}
	}
	gs := g.r.Groups(g.now)
	for _, s := range gs {
		if !slices.IsSortedFunc(s.Filter.Sources, netip.Addr.Compare) ||
			len(slices.Compact(slices.Clone(s.Filter.Sources))) != len(s.Filter.Sources) || s.Filter.Empty() {
			t.Fatalf("group %+v", s)
		}
		if (s.Filter.Mode == filter.Exclude) != (s.GroupTimer > 0) {
			t.Fatalf("group timer of %+v", s)
		}
	}
	// With nobody reporting any more, every group expires.
	g.runUntil(time.Hour)
	g.out()
	if n := len(g.r.Groups(g.now)); n != 0 {
		t.Fatalf("%d groups left after an hour", n)
	}
}

// fixChecksums returns a copy of frame with its IPv4 header, IGMP and
// ICMPv6 checksums recomputed, or nil if it has no such headers to fix.
func fixChecksums(frame []byte) []byte {
	b := slices.Clone(frame)
	if len(b) < 14 {
		return nil
	}
	etype, ip := binary.BigEndian.Uint16(b[12:]), b[14:]
	if etype == etherTypeVLAN && len(ip) >= 4 {
		etype, ip = binary.BigEndian.Uint16(ip[2:]), ip[4:]
	}
	switch {
	case etype == etherTypeIPv4 && len(ip) >= 20:
		hl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || hl > len(ip) {
			return nil
		}
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], fold(sum(0, ip[:hl])))
		if total >= hl+4 && total <= len(ip) {
			withSum(ip[hl:total])
		}
		return b
	case etype == etherTypeIPv6 && len(ip) >= 40:
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return nil
		}
		next, p := ip[6], ip[40:40+plen]
		for range 8 {
			if next == protoICMPv6 {
				if len(p) < 4 {
					return nil
				}
				p[2], p[3] = 0, 0
				binary.BigEndian.PutUint16(p[2:], fold(sum(pseudo6(addr16(ip[8:]), addr16(ip[24:]), len(p)), p)))
				return b
			}
			if len(p) < 8 || len(p) < (int(p[1])+1)*8 {
				return nil
			}
			next, p = p[0], p[(int(p[1])+1)*8:]
		}
	}
	return nil
}

func knownError(err error) bool {
	for _, e := range []error{ErrTruncated, ErrChecksum, ErrMalformed, ErrUnknownType, ErrNotLocal, ErrNotIGMP, ErrLimit} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
