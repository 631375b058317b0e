package main

import (
	"net"
	"syscall"
)

// multicastIf sets IP_MULTICAST_IF by interface index (struct ip_mreqn), so
// the interface needs no particular address, and turns off loopback of our
// own datagrams, which no receiver here wants.
func multicastIf(fd, index int) error {
	if err := syscall.SetsockoptIPMreqn(fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, &syscall.IPMreqn{Ifindex: int32(index)}); err != nil {
		return err
	}
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 0)
}

// forceRcvBuf sets SO_RCVBUFFORCE (root), which unlike SO_RCVBUF ignores
// net.core.rmem_max.
func forceRcvBuf(c *net.UDPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return controlErr(raw, func(fd int) error {
		return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
	})
}

// controlErr runs f on the socket's descriptor and returns f's error.
func controlErr(c syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := c.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// rusage returns this process's user and system CPU seconds so far.
func rusage() (user, sys float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1, -1
	}
	return float64(ru.Utime.Nano()) / 1e9, float64(ru.Stime.Nano()) / 1e9
}
