package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/fuzzseed"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// The seed corpus under testdata/fuzz/FuzzUnmarshal is generated from
// unmarshalSeeds; TestFuzzSeeds fails if the files drift from it.
// Regenerate with
//
//	go test ./topology -run TestFuzzSeeds -update-seeds

func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		err := m.UnmarshalBinary(data)
		if err != nil {
			n := 0
			for _, s := range []error{ErrVersion, ErrMalformed, ErrLimit} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || m.Kind != 0 || m.Groups != nil {
				t.Fatalf("refused with %v: %d sentinels, message %+v", err, n, m)
			}
			return
		}
		// Memory: what was decoded is what the bytes spelt out, no more.
		if len(m.Groups) > MaxGroups || m.Size() != len(data) {
			t.Fatalf("decoded %d groups, size %d from %d bytes", len(m.Groups), m.Size(), len(data))
		}
		// Canonical: re-encoding gives the very same bytes, and those
		// decode to an equal message.
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoded\n% x\nfrom\n% x", b, data)
		}
		var again Message
		if err := again.UnmarshalBinary(b); err != nil || !messagesEqual(&again, &m) {
			t.Fatalf("second decode: %+v, %v", again, err)
		}
		// Whatever decodes, the table takes without harm, and a full
		// state shows up as sent.
		tb := NewTable()
		tb.Apply(nodeID(1), &m, epoch0)
		v := tb.View()
		if m.Kind == KindFull && v.Len() != len(m.Groups) {
			t.Fatalf("full with %d groups gave a view of %d", len(m.Groups), v.Len())
		}
		for _, g := range m.Groups {
			v.Targets(g.Addr, g.Addr, nil)
			for _, s := range g.Filter.Sources {
				if got := len(v.Targets(g.Addr, s, nil)) == 1; m.Kind == KindFull && got != (g.Filter.Mode == filter.Include) {
					t.Fatalf("full %v %v: Targets for %v = %v", g.Addr, g.Filter, s, got)
				}
			}
		}
	})
}

func unmarshalSeeds(t testing.TB) map[string][]byte {
	seeds := make(map[string][]byte)
	for name, m := range sampleMessages() {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seeds[name] = b
	}
	full := seeds["full"]
	hostile := binary.BigEndian.AppendUint16(bytes.Clone(full[:headerLen-2]), MaxGroups)
	seeds["empty"] = nil
	seeds["version-2"] = append([]byte{2}, full[1:]...)
	seeds["truncated"] = full[:len(full)-3]
	seeds["hostile-count"] = append(hostile, full[headerLen:headerLen+minGroupLen]...)
	seeds["unsorted-sources"] = rawEncode(&Message{Kind: KindDelta, Seq: 1, Refresh: time.Minute,
		Groups: []Group{{ip("232.1.1.1"), incl("10.0.0.2", "10.0.0.1")}}})
	return seeds
}

// TestFuzzSeeds writes the corpus with -update-seeds, and otherwise checks
// that the committed one is exactly what this code would write.
func TestFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzUnmarshal", unmarshalSeeds(t))
}

// FuzzTableSequence applies a sequence of messages, each from one of four
// nodes, to a table that already holds state (what a member, or a member
// speaking for itself in any order, can send): fulls, deltas out of turn,
// stale and repeated sequence numbers, new epochs, removals and expiry.
// Nothing may panic; a message that changes nothing leaves the view as
// it was; the view names only nodes that sent something and were not
// removed, and only groups someone wants.
func FuzzTableSequence(f *testing.F) {
	full := func(seq uint64, groups ...Group) []byte {
		b, _ := (&Message{Kind: KindFull, Epoch: 7, Seq: seq, Groups: groups, Refresh: time.Minute}).MarshalBinary()
		return b
	}
	delta := func(seq uint64, groups ...Group) []byte {
		b, _ := (&Message{Kind: KindDelta, Epoch: 7, Seq: seq, Groups: groups, Refresh: time.Minute}).MarshalBinary()
		return b
	}
	g := func(a string) Group { return Group{Addr: ip(a), Filter: excl()} }
	item := func(node byte, b []byte) []byte { return append([]byte{node, byte(len(b) >> 8), byte(len(b))}, b...) }
	f.Add(slices.Concat(item(0, full(3, g("239.1.1.1"))), item(0, delta(4, Group{Addr: ip("239.1.1.1"), Filter: incl()})), item(1, delta(9, g("239.2.2.2")))))
	f.Add(slices.Concat(item(2, full(^uint64(0))), item(2, full(1, g("ff15::1"))), item(0xf3, nil)))
	part := func(seq uint64, i, n int, groups ...Group) []byte {
		b, _ := (&Message{Kind: KindPart, Epoch: 7, Seq: seq, Part: i, Parts: n, Groups: groups, Refresh: time.Minute}).MarshalBinary()
		return b
	}
	f.Add(slices.Concat(item(1, part(5, 1, 2, g("239.3.3.3"))), item(1, part(5, 0, 2, g("239.1.1.1"))), item(1, delta(6, g("239.4.4.4"))),
		item(2, part(2, 0, 3, g("239.1.1.1"))), item(2, part(3, 1, 3, g("239.2.2.2"))), item(0xe2, nil), item(1, part(5, 1, 2, g("239.0.0.1")))))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := NewTable()
		now := epoch0
		// The state already there: two nodes with a group each.
		for i, a := range []string{"239.9.9.9", "ff15::9"} {
			tb.Apply(nodeID(byte(10+i)), &Message{Kind: KindFull, Epoch: 1, Seq: 1, Groups: []Group{g(a)}, Refresh: time.Minute}, now)
		}
		alive := map[nodeid.ID]bool{nodeID(10): true, nodeID(11): true}
		for len(data) >= 3 {
			sel, n := data[0], int(data[1])<<8|int(data[2])
			data = data[3:]
			n = min(n, len(data))
			body := data[:n]
			data = data[n:]
			from := nodeID(byte(10 + sel&3))
			switch {
			case sel&0xf0 == 0xf0:
				tb.Remove(from)
				delete(alive, from)
				continue
			case sel&0xf0 == 0xe0:
				now = now.Add(time.Duration(n) * time.Second)
				tb.Expire(now)
				continue
			}
			var m Message
			if m.UnmarshalBinary(body) != nil {
				continue
			}
			before := tb.View()
			changed, _ := tb.Apply(from, &m, now)
			if m.Kind != KindSync {
				alive[from] = true
			}
			if !changed && !viewsEqual(before, tb.View()) {
				t.Fatalf("Apply reported no change but the view moved")
			}
		}
		// The memory bound's count is what the table holds.
		sum := 0
		for _, r := range tb.nodes {
			if e := entriesHeld(r); e != r.entries {
				t.Fatalf("a node's entries %d, its groups hold %d", r.entries, e)
			}
			sum += r.entries
			if r.pend != nil {
				sum += r.pend.entries
			}
		}
		if sum != tb.entries {
			t.Fatalf("table counts %d entries, holds %d", tb.entries, sum)
		}
		v := tb.View()
		for _, grp := range v.Groups() {
			subs := v.Nodes(grp)
			if len(subs) == 0 {
				t.Fatalf("group %s in the view with nobody subscribed", grp)
			}
			for _, s := range subs {
				if !alive[s.Node] {
					t.Fatalf("group %s lists node %x, which sent nothing or was removed", grp, s.Node[:2])
				}
				if s.Filter.Mode == filter.Include && len(s.Filter.Sources) == 0 {
					t.Fatalf("group %s lists an INCLUDE{} subscription", grp)
				}
			}
		}
	})
}

func viewsEqual(a, b *View) bool {
	if !slices.Equal(a.Groups(), b.Groups()) {
		return false
	}
	for _, g := range a.Groups() {
		if !slices.EqualFunc(a.Nodes(g), b.Nodes(g), func(x, y Subscription) bool {
			return x.Node == y.Node && x.Filter.Mode == y.Filter.Mode && slices.Equal(x.Filter.Sources, y.Filter.Sources)
		}) {
			return false
		}
	}
	return true
}

func entriesHeld(r *remote) int {
	n := 0
	for _, m := range r.groups {
		n += entriesOf(m.filter)
	}
	return n
}
