package nat

import (
	"bytes"
	"net"
	"syscall"
	"testing"

	"github.com/pion/stun"
	"golang.org/x/net/ipv4"
)

func TestClassify(t *testing.T) {
	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	for _, tc := range []struct {
		name string
		b    []byte
		want class
	}{
		{"empty", nil, classDrop},
		{"STUN binding", binding, classSTUN},
		{"STUN range, no cookie", make([]byte, 20), classDrop},
		{"STUN range, short", binding[:19], classDrop},
		{"first byte 3 with cookie", append([]byte{3}, binding[1:]...), classSTUN},
		{"first byte 4", append([]byte{4}, binding[1:]...), classData},
		{"DTLS handshake", []byte{22, 254, 253}, classData},
		{"TURN channel range", []byte{0x40, 0, 0, 0}, classData},
		{"RTP range", []byte{0x80}, classData},
		{"0xff", []byte{0xff}, classData},
	} {
		if got := classify(tc.b); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// fuzzBatch turns fuzz input into a received batch: records of one header
// byte (low 6 bits: length; 0x40: no address; 0x80: truncated flag) and
// that many bytes, then the whole input as one last packet.
func fuzzBatch(data []byte) []ipv4.Message {
	var msgs []ipv4.Message
	add := func(b []byte, addr net.Addr, flags int) {
		buf := make([]byte, len(b))
		msgs = append(msgs, ipv4.Message{Buffers: [][]byte{buf}, N: copy(buf, b), Addr: addr, Flags: flags})
	}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	for rest := data; len(rest) > 0 && len(msgs) < BatchSize-1; {
		h := rest[0]
		n := min(int(h&0x3f), len(rest)-1)
		var addr net.Addr = from
		if h&0x40 != 0 {
			addr = nil
		}
		flags := 0
		if h&0x80 != 0 {
			flags = syscall.MSG_TRUNC
		}
		add(rest[1:1+n], addr, flags)
		rest = rest[1+n:]
	}
	if len(data) <= MaxPacketSize {
		add(data, from, 0)
	}
	return msgs
}

// FuzzDemux feeds arbitrary batches to the dispatcher: it must not panic,
// every packet must end up in exactly one place (pion's queue, the
// Handler's batch, or dropped), and bytes must arrive unchanged.
func FuzzDemux(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	f.Add([]byte{0x03, 0x80, 'h', 'i', 0x41, 0x16, 0x82, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var stats counters
		sc := newSTUNConn(nil, &stats)
		d := &demux{stun: sc, stats: &stats}
		msgs := fuzzBatch(data)
		got := d.dispatch(msgs)

		var wantSTUN, wantData [][]byte
		for _, m := range msgs {
			b := m.Buffers[0][:m.N]
			if m.Addr == nil || m.Flags&syscall.MSG_TRUNC != 0 {
				continue
			}
			switch classify(b) {
			case classSTUN:
				wantSTUN = append(wantSTUN, b)
			case classData:
				wantData = append(wantData, b)
			}
		}
		if len(got) != len(wantData) {
			t.Fatalf("handler batch has %d packets, want %d", len(got), len(wantData))
		}
		for i, p := range got {
			if !bytes.Equal(p.Data, wantData[i]) || p.Addr.Port() != 4242 || !p.Addr.Addr().Is4() {
				t.Fatalf("packet %d = %x from %v, want %x", i, p.Data, p.Addr, wantData[i])
			}
		}
		if len(sc.in) != len(wantSTUN) {
			t.Fatalf("%d STUN queued, want %d", len(sc.in), len(wantSTUN))
		}
		buf := make([]byte, MaxPacketSize)
		for _, want := range wantSTUN {
			n, _, err := sc.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Fatalf("STUN read %x, %v; want %x", buf[:n], err, want)
			}
		}
		total := stats.stunIn.Load() + stats.dropped.Load() + uint64(len(got))
		if stats.packetsIn.Load() != uint64(len(msgs)) || total != uint64(len(msgs)) {
			t.Fatalf("counters: in %d, stun %d + dropped %d + data %d, for %d messages",
				stats.packetsIn.Load(), stats.stunIn.Load(), stats.dropped.Load(), len(got), len(msgs))
		}
	})
}
