package topology

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

func sampleRoute() Route {
	return Route{Src: nodeID(1), Dst: nodeID(2), TTL: HopLimit, Control: true}
}

func TestRouteHeaderBytes(t *testing.T) {
	h := sampleRoute()
	b, err := h.AppendBinary([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{'x', 0x20, 0x01, HopLimit}, append(idBytes(nodeID(1)), idBytes(nodeID(2))...)...)
	if !bytes.Equal(b, want) || len(b)-1 != RouteHeaderLen {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
	pkt := append(b[1:], "payload"...)
	got, payload, err := ParseRoute(pkt)
	if err != nil || got != h || string(payload) != "payload" || &payload[0] != &pkt[RouteHeaderLen] {
		t.Fatalf("parsed %+v %q %v; want %+v and the payload in place", got, payload, err, h)
	}
	bc := Route{Src: nodeID(1), Dst: nodeID(1), TTL: 1, Broadcast: true}
	b, _ = bc.MarshalBinary()
	if got, _, err := ParseRoute(b); err != nil || got != bc || b[1] != 0x02 {
		t.Fatalf("broadcast to the whole ring: %+v %v", got, err)
	}
}

func TestRouteHeaderRefused(t *testing.T) {
	good, _ := (&Route{Src: nodeID(1), Dst: nodeID(2), TTL: 5}).MarshalBinary()
	edit := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	tests := map[string][]byte{
		"empty":       nil,
		"short":       good[:RouteHeaderLen-1],
		"version":     edit(func(b []byte) { b[0] = 1 }),
		"flags":       edit(func(b []byte) { b[1] = 8 }),
		"relay bcast": edit(func(b []byte) { b[1] = 6 }),
		"ttl 0":       edit(func(b []byte) { b[2] = 0 }),
		"ttl over":    edit(func(b []byte) { b[2] = HopLimit + 1 }),
		"zero src":    edit(func(b []byte) { clear(b[3:35]) }),
		"zero dst":    edit(func(b []byte) { clear(b[35:67]) }),
		"to itself":   edit(func(b []byte) { copy(b[35:67], b[3:35]) }),
		"all zeroes":  make([]byte, RouteHeaderLen),
	}
	for name, b := range tests {
		if h, p, err := ParseRoute(b); !errors.Is(err, ErrRoute) || h != (Route{}) || p != nil {
			t.Errorf("%s: %+v %v %v", name, h, p, err)
		}
	}
	for _, h := range []Route{{Src: nodeID(1), Dst: nodeID(2)}, {Src: nodeID(1), Dst: nodeID(1), TTL: 1}, {Dst: nodeID(1), TTL: 1}} {
		if b, err := h.AppendBinary(nil); !errors.Is(err, ErrRoute) || len(b) != 0 {
			t.Errorf("append %+v: %x %v", h, b, err)
		}
	}
}

// FuzzRoute: a header that parses re-encodes to the same bytes, the
// payload is the rest, and Forward on it never misbehaves.
func FuzzRoute(f *testing.F) {
	h := sampleRoute()
	good, _ := h.AppendBinary(nil)
	bc := Route{Src: nodeID(1), Dst: nodeID(1), TTL: 1, Broadcast: true}
	bcb, _ := bc.MarshalBinary()
	for _, s := range [][]byte{good, append(bytes.Clone(good), "frame"...), bcb, good[:20], nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := ParseRoute(data)
		if err != nil {
			if !errors.Is(err, ErrRoute) || h != (Route{}) || payload != nil {
				t.Fatalf("refused with %v, %+v", err, h)
			}
			return
		}
		b, err := h.AppendBinary(nil)
		if err != nil || !bytes.Equal(b, data[:RouteHeaderLen]) || !bytes.Equal(payload, data[RouteHeaderLen:]) {
			t.Fatalf("re-encoded %x, %v from %x", b, err, data)
		}
		ttl := h.TTL
		next, v := NewRoutes(nodeID(9), []nodeid.ID{h.Src, h.Dst}, nil).Forward(&h)
		switch {
		case v == Forward && (h.TTL != ttl-1 || next == nodeID(9)):
			t.Fatalf("forward to %s with ttl %d from %d", next.Short(), h.TTL, ttl)
		case v != Forward && h.TTL != ttl:
			t.Fatalf("%v changed the ttl", v)
		}
	})
}
