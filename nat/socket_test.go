package nat

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
)

func udpClient(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sockAddr(sk *Socket) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sk.LocalAddr().Port))
}

// The Handler gets every non-STUN packet, in order, with the sender's
// address; STUN goes to pion instead; garbage in the STUN range and empty
// datagrams go nowhere.
func TestSocketDemux(t *testing.T) {
	checkLeaks(t)
	sk := listen(t, loopback())
	got := collect(t, sk)
	c := udpClient(t)
	to := net.UDPAddrFromAddrPort(sockAddr(sk))

	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	junk := make([]byte, 20) // first byte 0, no magic cookie
	dtls := []byte{22, 254, 253, 0, 0}
	data := []byte{0x80, 'h', 'i'}
	for _, p := range [][]byte{binding, junk, {}, dtls, data} {
		if _, err := c.WriteToUDP(p, to); err != nil {
			t.Fatal(err)
		}
	}
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, want := range [][]byte{dtls, data} {
		select {
		case p := <-got:
			if !bytes.Equal(p.Data, want) || p.Addr != from {
				t.Fatalf("handler got %x from %v, want %x from %v", p.Data, p.Addr, want, from)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get %x", want)
		}
	}
	waitFor(t, func() bool { return sk.Stats().PacketsIn == 5 })
	select {
	case p := <-got:
		t.Fatalf("handler got an extra packet %x", p.Data)
	case <-time.After(50 * time.Millisecond):
	}
	st := sk.Stats()
	if st.STUNIn != 1 || st.HandlerIn != 2 || st.Dropped != 2 {
		t.Errorf("stats %+v: want STUNIn 1, HandlerIn 2, Dropped 2", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One WriteBatch of 64 packets arrives whole at a plain UDP reader; a
// packet for an IPv6 peer is skipped without holding up the rest.
func TestWriteBatch(t *testing.T) {
	checkLeaks(t)
	sk := listen(t, loopback())
	r := udpClient(t)
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()

	pkts := make([]Packet, 0, BatchSize+1)
	for i := range BatchSize {
		pkts = append(pkts, Packet{Data: fmt.Appendf(nil, "packet %02d", i), Addr: to})
		if i == 10 {
			pkts = append(pkts, Packet{Data: []byte("v6"), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")})
		}
	}
	n, err := sk.WriteBatch(pkts)
	if n != BatchSize || !errors.Is(err, ErrNotIPv4) {
		t.Fatalf("WriteBatch = %d, %v; want %d, ErrNotIPv4", n, err, BatchSize)
	}
	seen := map[string]bool{}
	buf := make([]byte, 100)
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range BatchSize {
		n, _, err := r.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(seen), err)
		}
		seen[string(buf[:n])] = true
	}
	if len(seen) != BatchSize {
		t.Errorf("got %d distinct packets, want %d", len(seen), BatchSize)
	}
	if st := sk.Stats(); st.PacketsOut != BatchSize || st.WriteErrors != 1 {
		t.Errorf("stats %+v: want PacketsOut %d, WriteErrors 1", st, BatchSize)
	}
}

// Close ends Serve with nil, later writes fail with net.ErrClosed, and no
// goroutine (ours or pion's mux worker) survives.
func TestSocketClose(t *testing.T) {
	checkLeaks(t)
	sk, err := Listen(loopback(), nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- sk.Serve(func([]Packet) {}) }()
	time.Sleep(10 * time.Millisecond)
	if err := sk.Serve(func([]Packet) {}); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve = %v, want ErrServing", err)
	}
	if err := sk.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if err := sk.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := sk.WriteTo([]byte{0x80}, sockAddr(sk)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close = %v, want net.ErrClosed", err)
	}
	if _, err := sk.WriteBatch([]Packet{{Data: []byte{0x80}, Addr: sockAddr(sk)}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close = %v, want net.ErrClosed", err)
	}
}

// Listen refuses a selection that leaves no address, instead of letting
// pion advertise 0.0.0.0.
func TestListenNoAddress(t *testing.T) {
	_, err := Listen(Settings{Interfaces: []string{"lo"}}, nil, nil) // loopback not included
	if !errors.Is(err, ErrNoAddress) {
		t.Fatalf("Listen = %v, want ErrNoAddress", err)
	}
	_, err = Listen(Settings{Exclude: []string{"[eth"}}, nil, nil)
	if err == nil {
		t.Fatal("Listen accepted a bad interface pattern")
	}
}
