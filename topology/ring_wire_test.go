package topology

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

func sampleNeighbors() *Neighbors {
	return &Neighbors{Links: []NeighborLink{{nodeID(3), true}, {nodeID(7), false}, {nodeID(200), true}}}
}

func TestNeighborsBytes(t *testing.T) {
	b, err := sampleNeighbors().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x10, 0, 0, 3, 1}
	want = append(want, idBytes(nodeID(3))...)
	want = append(want, 0)
	want = append(want, idBytes(nodeID(7))...)
	want = append(want, 1)
	want = append(want, idBytes(nodeID(200))...)
	if !bytes.Equal(b, want) || len(b) != sampleNeighbors().Size() {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
	var m Neighbors
	if err := m.UnmarshalBinary(b); err != nil || !slices.Equal(m.Links, sampleNeighbors().Links) {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	empty, _ := (&Neighbors{}).MarshalBinary()
	if err := m.UnmarshalBinary(empty); err != nil || m.Links != nil {
		t.Fatalf("empty: %+v, %v", m, err)
	}
}

func idBytes(id nodeid.ID) []byte { return id[:] }

func TestNeighborsRefused(t *testing.T) {
	good, _ := sampleNeighbors().MarshalBinary()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := map[string][]byte{
		"empty":         nil,
		"short header":  good[:3],
		"version":       edit(func(b []byte) []byte { b[0] = 0x11; return b }),
		"header flags":  edit(func(b []byte) []byte { b[1] = 1; return b }),
		"link flags":    edit(func(b []byte) []byte { b[4] = 2; return b }),
		"truncated":     good[:len(good)-1],
		"trailing":      append(bytes.Clone(good), 0),
		"count too big": edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 4); return b }),
		"over max":      binary.BigEndian.AppendUint16([]byte{0x10, 0}, MaxNeighbors+1),
		"unsorted":      edit(func(b []byte) []byte { b[5], b[5+33] = b[5+33], b[5]; return b }),
		"duplicate":     edit(func(b []byte) []byte { copy(b[5+33:5+66], b[5:5+32]); return b }),
		"zero ID":       edit(func(b []byte) []byte { clear(b[5 : 5+32]); return b }),
	}
	for name, b := range tests {
		m := Neighbors{Links: []NeighborLink{{ID: nodeID(1)}}}
		if err := m.UnmarshalBinary(b); !errors.Is(err, ErrNeighbors) || m.Links != nil {
			t.Errorf("%s: err %v, links %v", name, err, m.Links)
		}
	}
	bad := []*Neighbors{
		{Links: []NeighborLink{{ID: nodeID(2)}, {ID: nodeID(1)}}},
		{Links: []NeighborLink{{}}},
		{Links: make([]NeighborLink, MaxNeighbors+1)},
	}
	for _, m := range bad {
		if _, err := m.MarshalBinary(); !errors.Is(err, ErrNeighbors) {
			t.Errorf("marshal %d links: err %v", len(m.Links), err)
		}
	}
}

// FuzzNeighbors: whatever arrives, decoding is strict and canonical, and
// the ring takes what decodes without harm.
func FuzzNeighbors(f *testing.F) {
	good, _ := sampleNeighbors().MarshalBinary()
	empty, _ := (&Neighbors{}).MarshalBinary()
	for _, s := range [][]byte{good, empty, good[:10], append(bytes.Clone(good), 1), {0x10, 0, 0xff, 0xff}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Neighbors
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrNeighbors) || m.Links != nil {
				t.Fatalf("refused with %v, links %v", err, m.Links)
			}
			return
		}
		b, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(b, data) || m.Size() != len(data) {
			t.Fatalf("re-encoded %x, %v from %x", b, err, data)
		}
		r := NewRing(nodeID(1), RingConfig{Successors: 2, Chords: 2})
		r.LinkUp(nodeID(2), epoch0)
		r.Apply(nodeID(2), &m)
		r.Tick(epoch0)
		if known := r.Known(epoch0); len(known) > len(m.Links)+1 {
			t.Fatalf("%d links listed, %d nodes known", len(m.Links), len(known))
		}
	})
}
