package nat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// writeScratch is one sender's sendmmsg state: messages and addresses that
// are filled in place, so a steady stream of WriteBatch calls allocates
// nothing. Senders take one from Socket.writers for the duration of a call,
// so concurrent senders never share one.
type writeScratch struct {
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	ips   [][4]byte // backing of addrs[i].IP
	bufs  [][1][]byte
}

func newWriteScratch() *writeScratch {
	w := &writeScratch{
		msgs:  make([]ipv4.Message, BatchSize),
		addrs: make([]net.UDPAddr, BatchSize),
		ips:   make([][4]byte, BatchSize),
		bufs:  make([][1][]byte, BatchSize),
	}
	for i := range w.msgs {
		w.addrs[i].IP = w.ips[i][:]
		w.msgs[i].Addr = &w.addrs[i]
		w.msgs[i].Buffers = w.bufs[i][:]
	}
	return w
}

// toIPv4 checks that to is an IPv4 (or v4-mapped) address.
func toIPv4(to netip.AddrPort) (netip.AddrPort, error) {
	to = netipUnmap(to)
	if !to.Addr().Is4() {
		return to, fmt.Errorf("%w: %s", ErrNotIPv4, to)
	}
	return to, nil
}

// WriteTo sends one datagram to to.
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) error {
	to, err := toIPv4(to)
	if err != nil {
		return err
	}
	var n int
	if s.udp != nil {
		n, err = s.udp.WriteToUDPAddrPort(b, to)
	} else {
		n, err = s.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
	if err != nil {
		s.stats.writeErrors.Add(1)
		return err
	}
	s.stats.packetsOut.Add(1)
	s.stats.bytesOut.Add(uint64(n))
	return nil
}

// WriteBatch sends pkts[i].Data to pkts[i].Addr with sendmmsg, BatchSize at
// a time. It sends every packet it can: one the kernel refuses (a route
// gone, a non-IPv4 address) is skipped, not retried, so one bad peer does
// not hold up the others. It returns how many were sent and the first
// error; after Close the error is net.ErrClosed. pkts is not retained.
func (s *Socket) WriteBatch(pkts []Packet) (int, error) {
	w, _ := s.writers.Get().(*writeScratch)
	if w == nil {
		w = newWriteScratch()
	}
	defer func() {
		// Drop references to caller memory before pooling the scratch.
		for i := range w.bufs {
			w.bufs[i][0] = nil
		}
		s.writers.Put(w)
	}()

	sent, bytes, failed := 0, 0, 0
	var first error
	for len(pkts) > 0 {
		// Fill up to BatchSize messages, skipping what cannot be addressed.
		k := 0
		for len(pkts) > 0 && k < BatchSize {
			p := pkts[0]
			pkts = pkts[1:]
			to, err := toIPv4(p.Addr)
			if err != nil {
				failed++
				first = firstErr(first, err)
				continue
			}
			w.ips[k] = to.Addr().As4()
			w.addrs[k].Port = int(to.Port())
			w.bufs[k][0] = p.Data
			k++
		}
		for off := 0; off < k; {
			n, err := s.pc.WriteBatch(w.msgs[off:k], 0)
			n = max(n, 0) // x/net passes the syscall's -1 through on error
			for i := off; i < off+n; i++ {
				bytes += len(w.bufs[i][0])
			}
			sent += n
			off += n
			if err == nil {
				continue
			}
			if errors.Is(err, net.ErrClosed) || s.closed.Load() {
				s.account(sent, bytes, failed+k-off+len(pkts))
				return sent, net.ErrClosed
			}
			// sendmmsg stops at the first failing message; the error is
			// about w.msgs[off], so drop that one and go on.
			first = firstErr(first, err)
			failed++
			off++
		}
	}
	s.account(sent, bytes, failed)
	return sent, first
}

func (s *Socket) account(sent, bytes, failed int) {
	s.stats.packetsOut.Add(uint64(sent))
	s.stats.bytesOut.Add(uint64(bytes))
	s.stats.writeErrors.Add(uint64(failed))
}

// firstErr keeps the first error.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
