package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
)

// A Host is one network namespace of a testbed.
type Host struct {
	Name string     // label given to the testbed method that made it
	NS   string     // full namespace name, as ip(8) knows it
	Addr netip.Addr // main address: public, on a LAN, or a router's LAN side
	WAN  netip.Addr // public address of a NAT router, and of the router a LAN host sits behind

	tb  *Testbed
	lan *lan // set on NAT routers only
}

func (h *Host) String() string { return h.Name }

// AddNamespace adds a bare namespace with only lo, which is up.
func (tb *Testbed) AddNamespace(name string) (*Host, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.addNamespaceLocked(name)
}

func (tb *Testbed) addNamespaceLocked(name string) (*Host, error) {
	if tb.closed {
		return nil, ErrClosed
	}
	if !validLabel(name) || tb.labels[name] {
		return nil, fmt.Errorf("%w: host %q", ErrLabel, name)
	}
	h := &Host{Name: name, NS: tb.prefix + name, tb: tb}
	if err := ip("netns", "add", h.NS); err != nil {
		return nil, err
	}
	// Registered before anything else can fail, so Close removes it.
	tb.labels[name] = true
	tb.hosts = append(tb.hosts, h)
	if err := ip("-n", h.NS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return h, nil
}

// Veth links a and b with a veth pair named aIf in a and bIf in b, both up.
// The pair is created inside a with its peer moved straight into b, so it
// never appears in the root namespace and interface names only need to be
// unique within each namespace.
func (tb *Testbed) Veth(a *Host, aIf string, b *Host, bIf string) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.vethLocked(a, aIf, b, bIf)
}

func (tb *Testbed) vethLocked(a *Host, aIf string, b *Host, bIf string) error {
	if tb.closed {
		return ErrClosed
	}
	if a.tb != tb || b.tb != tb {
		return fmt.Errorf("netns: veth %s-%s: a host of another testbed", a, b)
	}
	if err := ip("-n", a.NS, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.NS); err != nil {
		return err
	}
	if err := ip("-n", a.NS, "link", "set", aIf, "up"); err != nil {
		return err
	}
	return ip("-n", b.NS, "link", "set", bIf, "up")
}

// Run runs args inside the namespace with `ip netns exec` and returns the
// combined output. It gives up after 30 s; the error names the command and
// includes its output.
func (h *Host) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	return h.RunContext(ctx, args...)
}

// RunContext is Run with the caller's context instead of the 30 s limit.
func (h *Host) RunContext(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("netns: Run without a command")
	}
	return run(ctx, "ip", append([]string{"netns", "exec", h.NS}, args...)...)
}

// Do runs f on the calling goroutine, locked to an OS thread that is switched
// into the namespace, and switches the thread back afterwards, even if f
// panics. Sockets keep the namespace they were created in, so f can open UDP
// sockets or join multicast groups that the test then uses anywhere.
// Goroutines started by f run in the root namespace. f must not call
// Host.Start: the kernel ties a child's death signal to the thread that
// forked it, and Do may end that thread if it cannot switch it back.
func (h *Host) Do(f func() error) (err error) {
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", h.NS, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", h.NS, err)
	}
	defer func() {
		if serr := netns.Set(orig); serr != nil {
			// Stay locked: the runtime then ends this thread with the
			// goroutine instead of reusing it in the wrong namespace.
			err = errors.Join(err, fmt.Errorf("netns: leave %s: %w", h.NS, serr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return f()
}
