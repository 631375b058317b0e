package netns

import (
	"errors"
	"syscall"
)

// sysProcAttr makes the kernel SIGKILL a child when the test binary dies, so
// a crashed test leaves no daemons behind. The signal is tied to the thread
// that forked the child, and Go only ends threads whose goroutine exits while
// locked, which is why Start must not be called from inside Host.Do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// pidAlive reports whether pid exists; EPERM still means it does.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// unsupported is why this platform cannot run a testbed, or "".
const unsupported = ""
