//go:build linux

package netns_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// must turns a (value, error) pair into a value or a fatal test error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// listenUDP opens a UDP socket inside h, closed when the test ends.
func listenUDP(t *testing.T, h *netns.Host, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", h, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// probe sends a datagram from sock to dst until listener, which must be
// bound to dst, receives it, and returns the source address it saw.
func probe(sock, listener *net.UDPConn, dst netip.AddrPort) (netip.AddrPort, error) {
	token := fmt.Appendf(nil, "probe %v from %v", dst, sock.LocalAddr())
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := sock.WriteToUDPAddrPort(token, dst); err != nil {
			return netip.AddrPort{}, err
		}
		listener.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, src, err := listener.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // timed out: send again
			}
			if bytes.Equal(buf[:n], token) {
				return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil
			}
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%s never arrived", token)
}

// ping sends ICMP echo requests from a raw socket inside h until dst answers.
// It stands in for ping(8), which minimal images lack.
func ping(h *netns.Host, dst netip.Addr) error {
	var c net.PacketConn
	if err := h.Do(func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	req := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'i', 'p', 'o', 'p'} // echo request, seq 1
	sum := icmpChecksum(req)
	req[2], req[3] = byte(sum>>8), byte(sum)
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := c.WriteTo(req, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, _, err := c.ReadFrom(buf) // Go strips the IPv4 header
			if err != nil {
				break
			}
			// An echo reply (type 0) carrying our id, seq and payload back.
			if n == len(req) && buf[0] == 0 && bytes.Equal(buf[4:n], req[4:]) {
				return nil
			}
		}
	}
	return errors.New("no echo reply")
}

// icmpChecksum is the Internet checksum of RFC 1071.
func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// makeStale makes a namespace named like a dead test binary's with a process
// inside. Any other test binary's New may delete it while it is being made,
// which is the very behaviour under test, so it retries with a new name.
func makeStale(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	for attempt := range 5 {
		ns := fmt.Sprintf("ipt%dx%d%d-stale-host", deadPid(t), os.Getpid(), attempt)
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Logf("ip netns add %s: %v\n%s", ns, err, out)
			continue
		}
		orphan := exec.Command("ip", "netns", "exec", ns, "sleep", "300")
		orphan.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := orphan.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { orphan.Process.Kill() })
		done := make(chan struct{})
		go func() { orphan.Wait(); close(done) }()
		// New finds processes by namespace, so wait until the orphan is in.
		for {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			if slices.Contains(strings.Fields(string(out)), strconv.Itoa(orphan.Process.Pid)) {
				return ns, done
			}
			select {
			case <-done:
			case <-time.After(10 * time.Millisecond):
				continue
			}
			t.Logf("%s vanished before its process entered", ns)
			break
		}
	}
	t.Fatal("could not make a stale namespace")
	return "", nil
}

// deadPid returns a pid that no process has, as a crashed test binary's.
func deadPid(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for pid := max - 1; pid > 1; pid-- {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return pid
		}
	}
	t.Fatal("no free pid")
	return 0
}
