package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/fuzzseed"
	"github.com/ipopd/ipopd/igmp/filter"
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
