//go:build !linux

package main

import (
	"errors"
	"net"
	"syscall"
)

var errLinux = errors.New("mcast: Linux only")

func multicastIf(fd, index int) error                   { return errLinux }
func forceRcvBuf(c *net.UDPConn, n int) error           { return errLinux }
func controlErr(syscall.RawConn, func(int) error) error { return errLinux }
func rusage() (user, sys float64)                       { return -1, -1 }
