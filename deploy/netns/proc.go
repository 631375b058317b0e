package netns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// A Proc is a long-running process started in a namespace with Host.Start.
type Proc struct {
	name    string // "<host>-<name>", also the log file's base name
	cmd     *exec.Cmd
	logPath string
	logOff  int64 // where this run starts in a log shared with earlier runs of the same name

	termSent atomic.Bool   // Stop or Close sent SIGTERM, so death by it is a clean exit
	done     chan struct{} // closed once Wait has returned
	err      error         // Wait's result, written before done is closed
}

// Start starts args inside the namespace via `ip netns exec`, which execs the
// command in place, so Pid is the command's own pid. env is added to the test
// binary's environment. Output goes to Dir()/<host>-<name>.log; a later Proc
// with the same name appends to it. Close stops the process; so does the
// kernel if the test binary dies.
func (h *Host) Start(name string, env []string, args ...string) (*Proc, error) {
	if !validLabel(name) {
		return nil, fmt.Errorf("%w: process %q", ErrLabel, name)
	}
	if len(args) == 0 {
		return nil, errors.New("netns: Start without a command")
	}
	tb := h.tb
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		return nil, ErrClosed
	}
	p := &Proc{
		name:    h.Name + "-" + name,
		logPath: filepath.Join(tb.dir, h.Name+"-"+name+".log"),
		done:    make(chan struct{}),
	}
	f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	defer f.Close() // the child has its own descriptor
	if p.logOff, err = f.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("netns: %s: start %v: %w", p, args, err)
	}
	tb.procs = append(tb.procs, p)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) String() string { return p.name }

// Pid is the process id, in the root pid namespace.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// ExitCode is the exit status, or -1 while running or after death by signal.
func (p *Proc) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends s; after exit it returns os.ErrProcessDone.
func (p *Proc) Signal(s os.Signal) error { return p.cmd.Process.Signal(s) }

// Kill sends SIGKILL and waits until the process is reaped, so a test that
// simulates a crash can rely on it being gone.
func (p *Proc) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("netns: %s: %w", p, err)
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM, waits up to 5 s and then sends SIGKILL. It returns nil
// if the process exited with status 0 or died of that SIGTERM (by the signal
// or with status 143 as shells and socat report it), otherwise the exit
// error; ErrIgnoredTerm if it had to be killed. On a process that has
// already exited, Stop just returns how it ended.
func (p *Proc) Stop() error { return p.stop(stopGrace) }

func (p *Proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.result()
	default:
	}
	p.termSent.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("netns: %s: %w", p, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.result()
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%w: %s, killed after %v", ErrIgnoredTerm, p, grace)
}

func (p *Proc) result() error {
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if p.termSent.Load() && errors.As(p.err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if ok && (ws.Signaled() && ws.Signal() == syscall.SIGTERM || ws.Exited() && ws.ExitStatus() == 128+int(syscall.SIGTERM)) {
			return nil
		}
	}
	return fmt.Errorf("netns: %s: %w", p, p.err)
}

// Log returns what the process has written to stdout and stderr so far.
// After Close has removed Dir it describes the error instead.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if p.logOff <= int64(len(b)) {
		b = b[p.logOff:]
	}
	return string(b)
}
