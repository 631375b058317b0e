//go:build !linux

package netns

import (
	"os"
	"syscall"
)

// The package compiles everywhere so that test files importing it need no
// build tags; Require skips (or fails) and New refuses to run.

func sysProcAttr() *syscall.SysProcAttr { return nil }

// pidAlive claims every pid is alive so nothing is ever deleted as stale.
func pidAlive(int) bool { return true }

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

const unsupported = "network namespaces need Linux"
