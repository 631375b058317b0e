package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	runTimeout = 30 * time.Second // per Run and per set-up command
	closeGrace = 3 * time.Second  // SIGTERM to SIGKILL in Close
	stopGrace  = 5 * time.Second  // SIGTERM to SIGKILL in Proc.Stop
	logTail    = 40               // lines of each process log a failed test shows
)

// seq numbers the testbeds of this process, so namespace names stay unique
// when tests of one package build testbeds in parallel.
var seq atomic.Int64

// A Testbed is a set of namespaces, links and processes that Close removes.
// Its methods may be called from several goroutines; set-up is serialized.
type Testbed struct {
	prefix string // "ipt<pid>x<seq>-<name>-", prepended to every namespace name
	dir    string

	mu      sync.Mutex // guards the fields below and is held through each set-up call
	closed  bool
	hosts   []*Host // creation order; Close deletes them in reverse
	labels  map[string]bool
	procs   []*Proc
	inet    *Host
	nextPub int // the next public address is 198.18.0.0 + nextPub
	nextLAN int // the next NAT gets 10.nextLAN.0.0/24
}

// Require skips t with a message when this machine cannot run a testbed: not
// Linux, not root, or ip or iptables missing. With IPOP_NETNS=1 in the
// environment, as in CI, it fails t instead, so a misconfigured runner cannot
// quietly pass by skipping.
func Require(t testing.TB) {
	t.Helper()
	reason := unsupported
	if reason == "" && os.Geteuid() != 0 {
		reason = "not root"
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); reason == "" && err != nil {
			reason = tool + " not found in PATH"
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("IPOP_NETNS") == "1" {
		t.Fatalf("netns: IPOP_NETNS=1 but %s", reason)
	}
	t.Skipf("netns: skipping, %s (needs root, ip and iptables; IPOP_NETNS=1 makes this a failure)", reason)
}

// New returns an empty testbed labelled name. It first deletes namespaces
// that crashed runs left behind (see the package comment).
func New(name string) (*Testbed, error) {
	if unsupported != "" {
		return nil, errors.New("netns: " + unsupported)
	}
	if err := removeStale(); err != nil {
		return nil, err
	}
	label := shorten(name)
	dir, err := os.MkdirTemp("", "ipopd-netns-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return &Testbed{
		prefix:  fmt.Sprintf("%s%dx%d-%s-", schemePrefix, os.Getpid(), seq.Add(1), label),
		dir:     dir,
		labels:  make(map[string]bool),
		nextPub: 10,
		nextLAN: 1,
	}, nil
}

// NewT is Require, New named after the test, and Close in t.Cleanup. When the
// test has failed it first logs the tail of every process's log, which Close
// deletes. Cleanup also runs after t.Fatal and after a panic in the test.
func NewT(t testing.TB) *Testbed {
	t.Helper()
	Require(t)
	tb, err := New(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Helper()
		if t.Failed() {
			tb.logTails(t)
		}
		if err := tb.Close(); err != nil {
			t.Errorf("netns: close: %v", err)
		}
	})
	return tb
}

// Dir is a temporary directory for configs and logs; Close removes it.
func (tb *Testbed) Dir() string { return tb.dir }

// Close stops all processes (SIGTERM, SIGKILL after 3 s), kills whatever else
// runs in the namespaces, and deletes them and Dir. It returns the errors of
// all of these steps joined, including processes that were still running and
// did not exit cleanly on SIGTERM; processes that had already exited are not
// reported again. Close is idempotent. With IPOP_KEEP_LOGS=DIR in the
// environment the process logs are first copied to DIR/<testbed prefix>/.
func (tb *Testbed) Close() error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.closed {
		return nil
	}
	tb.closed = true

	var (
		wg     sync.WaitGroup
		errsMu sync.Mutex
		errs   []error
	)
	for _, p := range tb.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		wg.Go(func() {
			if err := p.stop(closeGrace); err != nil {
				errsMu.Lock()
				errs = append(errs, err)
				errsMu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := len(tb.hosts) - 1; i >= 0; i-- {
		if err := removeNamespace(tb.hosts[i].NS); err != nil {
			errs = append(errs, err)
		}
	}
	if keep := os.Getenv("IPOP_KEEP_LOGS"); keep != "" {
		if err := keepLogs(tb.dir, filepath.Join(keep, strings.TrimSuffix(tb.prefix, "-"))); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(tb.dir); err != nil {
		errs = append(errs, fmt.Errorf("netns: %w", err))
	}
	return errors.Join(errs...)
}

// keepLogs copies the process logs in dir to to, for IPOP_KEEP_LOGS=DIR:
// a test's logs survive its testbed, for reading after a long run.
func keepLogs(dir, to string) error {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("netns: IPOP_KEEP_LOGS: %w", err)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(to, filepath.Base(l)), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("netns: IPOP_KEEP_LOGS: %w", err)
		}
	}
	return nil
}

func (tb *Testbed) logTails(t testing.TB) {
	t.Helper()
	tb.mu.Lock()
	procs := append([]*Proc(nil), tb.procs...)
	tb.mu.Unlock()
	for _, p := range procs {
		lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
		if len(lines) > logTail {
			lines = lines[len(lines)-logTail:]
		}
		t.Logf("netns: last lines of %s (exit code %d):\n%s", p, p.ExitCode(), strings.Join(lines, "\n"))
	}
}

// shorten turns a test name such as "TestNAT/symmetric" into a label that
// keeps namespace names readable and free of '/'.
func shorten(name string) string {
	const max = 24
	b := []byte(name)
	for i, c := range b {
		if !labelChar(c) || c == '-' {
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	if len(b) == 0 {
		return "tb"
	}
	return string(b)
}

func labelChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validLabel(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !labelChar(s[i]) {
			return false
		}
	}
	return true
}

// run runs a command with the test binary as its death-signal parent and
// returns its combined output; the error names the command and its output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = sysProcAttr()
	// A command that leaves a background child holding the output pipe
	// would otherwise keep Wait blocked after the command itself is done.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return string(out), fmt.Errorf("netns: %s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out), nil
}

// ip runs a set-up command of ip(8).
func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	_, err := run(ctx, "ip", args...)
	return err
}
