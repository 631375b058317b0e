package lab

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ipopd/ipopd/deploy/netns"
)

// Receiver is a UDP socket joined to a multicast group on a host's ipop0,
// counting datagrams per source address. It stands in for an unmodified
// multicast application: a plain socket and a plain join.
type Receiver struct {
	conn  net.PacketConn
	got   atomic.Int64
	mu    sync.Mutex
	froms map[netip.Addr]int64
	// seqs: when each numbered datagram ("ipopd multicast N", what Send
	// and Stream send) first arrived, and how many arrived again.
	seqs map[int]time.Time
	dups int
}

// Join opens a receiver in h for group:port on iface (ipop0 on a node, eth0
// on a LAN host). A non-empty source makes it a source-specific join
// (IGMPv3 INCLUDE{source}); IPv6 groups use an any-source join.
func Join(h *netns.Host, iface, group string, port int, source string) (*Receiver, error) {
	g, err := netip.ParseAddr(group)
	if err != nil {
		return nil, err
	}
	r := &Receiver{froms: map[netip.Addr]int64{}, seqs: map[int]time.Time{}}
	err = h.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		network, addr := "udp4", fmt.Sprintf("0.0.0.0:%d", port)
		if g.Is6() {
			network, addr = "udp6", fmt.Sprintf("[::]:%d", port)
		}
		if r.conn, err = net.ListenPacket(network, addr); err != nil {
			return err
		}
		gaddr := &net.UDPAddr{IP: net.IP(g.AsSlice())}
		switch {
		case g.Is6():
			return ipv6.NewPacketConn(r.conn).JoinGroup(ifi, gaddr)
		case source != "":
			return ipv4.NewPacketConn(r.conn).JoinSourceSpecificGroup(ifi, gaddr, &net.UDPAddr{IP: net.ParseIP(source)})
		default:
			return ipv4.NewPacketConn(r.conn).JoinGroup(ifi, gaddr)
		}
	})
	if err != nil {
		if r.conn != nil {
			r.conn.Close()
		}
		return nil, err
	}
	go r.read()
	return r, nil
}

func (r *Receiver) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		now := time.Now()
		r.got.Add(1)
		a, _ := netip.AddrFromSlice(from.(*net.UDPAddr).IP)
		var seq int
		numbered := false
		if _, err := fmt.Sscanf(string(buf[:n]), "ipopd multicast %d", &seq); err == nil {
			numbered = true
		}
		r.mu.Lock()
		r.froms[a.Unmap()]++
		if numbered {
			if _, again := r.seqs[seq]; again {
				r.dups++
			} else {
				r.seqs[seq] = now
			}
		}
		r.mu.Unlock()
	}
}

// Got is how many datagrams arrived.
func (r *Receiver) Got() int64 { return r.got.Load() }

// From is how many datagrams arrived from source.
func (r *Receiver) From(source string) int64 {
	a, _ := netip.ParseAddr(source)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.froms[a.Unmap()]
}

// Arrived returns when numbered datagram seq first arrived (false: not).
func (r *Receiver) Arrived(seq int) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seqs[seq]
	return t, ok
}

// Duplicates is how many numbered datagrams arrived more than once.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

// Close leaves the group (the kernel sends the leave/report).
func (r *Receiver) Close() error { return r.conn.Close() }

// Send sends count datagrams to group:port out of h's iface, interval apart.
func Send(h *netns.Host, iface, group string, port, count int, interval time.Duration) error {
	g, err := netip.ParseAddr(group)
	if err != nil {
		return err
	}
	c, err := sender(h, iface, g)
	if err != nil {
		return err
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.IP(g.AsSlice()), Port: port}
	for i := range count {
		if _, err := c.WriteTo(fmt.Appendf(nil, "ipopd multicast %d", i), dst); err != nil {
			return fmt.Errorf("send to %s: %w", dst, err)
		}
		time.Sleep(interval)
	}
	return nil
}

// sender opens a UDP socket in h that sends multicast for group g out of
// iface (TTL / hop limit 8).
func sender(h *netns.Host, iface string, g netip.Addr) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		if g.Is6() {
			if c, err = net.ListenPacket("udp6", "[::]:0"); err != nil {
				return err
			}
			p := ipv6.NewPacketConn(c)
			p.SetMulticastHopLimit(8)
			return p.SetMulticastInterface(ifi)
		}
		if c, err = net.ListenPacket("udp4", "0.0.0.0:0"); err != nil {
			return err
		}
		p := ipv4.NewPacketConn(c)
		p.SetMulticastTTL(8)
		return p.SetMulticastInterface(ifi)
	})
	if err != nil && c != nil {
		c.Close()
	}
	return c, err
}

// Stream sends numbered datagrams to a group at a steady rate until
// Stop, remembering when it sent each (for loss and recovery figures).
type Stream struct {
	mu   sync.Mutex
	sent []time.Time // by sequence number
	stop chan struct{}
	done chan error
}

// StartStream starts sending to group:port out of h's iface, one datagram
// every interval, numbered from 0 as Send numbers them.
func StartStream(h *netns.Host, iface, group string, port int, interval time.Duration) (*Stream, error) {
	g, err := netip.ParseAddr(group)
	if err != nil {
		return nil, err
	}
	c, err := sender(h, iface, g)
	if err != nil {
		return nil, err
	}
	s := &Stream{stop: make(chan struct{}), done: make(chan error, 1)}
	dst := &net.UDPAddr{IP: net.IP(g.AsSlice()), Port: port}
	go func() {
		defer c.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			s.mu.Lock()
			s.sent = append(s.sent, time.Now())
			s.mu.Unlock()
			c.WriteTo(fmt.Appendf(nil, "ipopd multicast %d", i), dst) // a TAP that is gone for a moment is a loss, not an end
			select {
			case <-s.stop:
				s.done <- nil
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// Sent returns the send time of each datagram so far, by number.
func (s *Stream) Sent() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.sent...)
}

// Stop ends the stream.
func (s *Stream) Stop() { close(s.stop); <-s.done }

// GroupsReceiver is one UDP socket joined to many groups on a host's
// ipop0, counting datagrams by payload (SendGroups sends each group its
// own). It stands in for an application that joins thousands of groups.
type GroupsReceiver struct {
	conn net.PacketConn
	mu   sync.Mutex
	got  map[string]int
}

// JoinGroups opens a socket in h on port and joins every IPv4 group of
// groups on iface. The kernel's per-socket bound
// (net.ipv4.igmp_max_memberships, 20 by default) is raised in h's
// namespace to fit.
func JoinGroups(h *netns.Host, iface string, groups []netip.Addr, port int) (*GroupsReceiver, error) {
	if _, err := h.Run("sysctl", "-qw", fmt.Sprintf("net.ipv4.igmp_max_memberships=%d", len(groups)+64)); err != nil {
		return nil, err
	}
	r := &GroupsReceiver{got: map[string]int{}}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		if r.conn, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port)); err != nil {
			return err
		}
		p := ipv4.NewPacketConn(r.conn)
		for _, g := range groups {
			if err := p.JoinGroup(ifi, &net.UDPAddr{IP: net.IP(g.AsSlice())}); err != nil {
				return fmt.Errorf("join %s: %w", g, err)
			}
		}
		return nil
	})
	if err != nil {
		if r.conn != nil {
			r.conn.Close()
		}
		return nil, err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := r.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got[string(buf[:n])]++
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// Missing returns the groups of groups none of whose datagrams (tagged
// tag, as SendGroups tags them) arrived, and how many arrived twice or
// more.
func (r *GroupsReceiver) Missing(groups []netip.Addr, tag string) (missing []netip.Addr, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range groups {
		switch n := r.got[groupPayload(tag, g)]; {
		case n == 0:
			missing = append(missing, g)
		case n > 1:
			dups++
		}
	}
	return missing, dups
}

// Close leaves every group.
func (r *GroupsReceiver) Close() error { return r.conn.Close() }

func groupPayload(tag string, g netip.Addr) string { return "ipopd group " + tag + " " + g.String() }

// SendGroups sends one datagram, tagged tag, to each group:port out of
// h's iface, interval apart.
func SendGroups(h *netns.Host, iface string, groups []netip.Addr, port int, tag string, interval time.Duration) error {
	if len(groups) == 0 {
		return nil
	}
	c, err := sender(h, iface, groups[0])
	if err != nil {
		return err
	}
	defer c.Close()
	for _, g := range groups {
		dst := &net.UDPAddr{IP: net.IP(g.AsSlice()), Port: port}
		if _, err := c.WriteTo([]byte(groupPayload(tag, g)), dst); err != nil {
			return fmt.Errorf("send to %s: %w", dst, err)
		}
		time.Sleep(interval)
	}
	return nil
}
