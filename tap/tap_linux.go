package tap

// Frame I/O on the TAP file descriptor.
//
//	kernel ──► fd (O_NONBLOCK) ──► Read: one netpoller wake-up, then read(2)
//	                                 until EAGAIN or the batch is full
//	Write: write(2) per frame ──► fd ──► kernel (waits on the poller if the
//	                                 queue is full)
//
// A TAP fd returns exactly one frame per read(2) and has no recvmmsg, so the
// batching here is about wake-ups, not syscalls: a busy TAP yields a whole
// batch per scheduler round trip.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type linuxTAP struct {
	ifce   *water.Interface
	raw    syscall.RawConn
	name   string
	mtu    int
	mac    net.HardwareAddr
	drops  atomic.Uint64 // frames too long for the reader's buffer
	closed atomic.Bool   // set by Close, so Read and Write report net.ErrClosed
}

// Open creates the TAP described by cfg, sets its MTU and addresses (host
// mode) or joins cfg.Bridge (switch mode), and brings it up. On any error
// nothing is left behind.
func Open(cfg Config) (Device, error) {
	if len(cfg.Name) == 0 || len(cfg.Name) > unix.IFNAMSIZ-1 {
		return nil, fmt.Errorf("tap: interface name %q must be 1..15 bytes", cfg.Name)
	}
	if l, err := netlink.LinkByName(cfg.Name); err == nil && l.Type() != "tuntap" {
		return nil, fmt.Errorf("%w: %s is a %s interface; choose another tap.name", ErrExists, cfg.Name, l.Type())
	}
	ifce, err := water.New(water.Config{
		DeviceType:             water.TAP,
		PlatformSpecificParams: water.PlatformSpecificParams{Name: cfg.Name},
	})
	if err != nil {
		return nil, openError(cfg.Name, err)
	}
	t := &linuxTAP{ifce: ifce, name: ifce.Name(), mtu: cfg.MTU}
	sc, ok := ifce.ReadWriteCloser.(syscall.Conn)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("tap: water returned a %T, want a pollable file", ifce.ReadWriteCloser)
	}
	if t.raw, err = sc.SyscallConn(); err != nil {
		ifce.Close()
		return nil, fmt.Errorf("tap: %w", err)
	}
	if err := t.configure(cfg); err != nil {
		ifce.Close() // a non-persistent TAP vanishes with its last fd
		return nil, err
	}
	return t, nil
}

func openError(name string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission), errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (creating %s: %v)", ErrPermission, name, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %v", ErrNoTUN, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("tap: %s is busy: another process (another ipopd?) holds it: %w", name, err)
	}
	return fmt.Errorf("tap: creating %s: %w", name, err)
}

func (t *linuxTAP) configure(cfg Config) error {
	link, err := netlink.LinkByName(t.name)
	if err != nil {
		return fmt.Errorf("tap: %s vanished after creation: %w", t.name, err)
	}
	if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("tap: setting MTU %d on %s: %w", cfg.MTU, t.name, err)
	}
	if len(cfg.MAC) > 0 {
		if err := netlink.LinkSetHardwareAddr(link, cfg.MAC); err != nil {
			return fmt.Errorf("tap: setting MAC %s on %s: %w", cfg.MAC, t.name, err)
		}
	}
	if cfg.Mode == ModeSwitch {
		br, err := netlink.LinkByName(cfg.Bridge)
		if err != nil {
			return fmt.Errorf("%w %q (tap.bridge) not found: %v", ErrBridge, cfg.Bridge, err)
		}
		if _, ok := br.(*netlink.Bridge); !ok {
			return fmt.Errorf("%w %q (tap.bridge) is a %s, not a bridge", ErrBridge, cfg.Bridge, br.Type())
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return fmt.Errorf("%w: joining %s to %s: %v", ErrBridge, t.name, cfg.Bridge, err)
		}
		if err := setMulticastRouter(link, mcastRouterPermanent); err != nil {
			return fmt.Errorf("%w: making %s a permanent multicast router port of %s: %v", ErrBridge, t.name, cfg.Bridge, err)
		}
	}
	if cfg.Address.IsValid() {
		if err := addAddr(link, cfg.Address, 0); err != nil {
			return err
		}
	}
	if cfg.Address6.IsValid() {
		// No duplicate address detection: the overlay address is ours by
		// certificate, and DAD would hold the address back for a second.
		if err := addAddr(link, cfg.Address6, unix.IFA_F_NODAD); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tap: bringing %s up: %w", t.name, err)
	}
	if link, err = netlink.LinkByName(t.name); err == nil {
		t.mac = link.Attrs().HardwareAddr
	}
	return nil
}

func addAddr(link netlink.Link, p interface{ String() string }, flags int) error {
	a, err := netlink.ParseAddr(p.String())
	if err != nil {
		return fmt.Errorf("tap: address %s: %w", p, err)
	}
	a.Flags = flags
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("tap: adding %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

func (t *linuxTAP) Name() string                   { return t.name }
func (t *linuxTAP) MTU() int                       { return t.mtu }
func (t *linuxTAP) HardwareAddr() net.HardwareAddr { return t.mac }

func (t *linuxTAP) Read(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	var rerr error
	err := t.raw.Read(func(fd uintptr) bool {
		for n < len(bufs) {
			m, err := unix.Read(int(fd), bufs[n])
			switch {
			case err == unix.EAGAIN:
				return n > 0 // nothing yet: wait on the poller
			case err == unix.EINTR:
				continue
			case err != nil:
				rerr = err
				return true
			case m >= len(bufs[n]):
				// A frame that filled the buffer may have been cut: drop it
				// rather than hand on a truncated frame.
				t.drops.Add(1)
				continue
			}
			sizes[n] = m
			n++
		}
		return true
	})
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, t.closedOr(err)
	}
	return 0, t.closedOr(rerr)
}

func (t *linuxTAP) Write(frames [][]byte) (int, error) {
	n := 0
	var werr error
	err := t.raw.Write(func(fd uintptr) bool {
		for n < len(frames) {
			_, err := unix.Write(int(fd), frames[n])
			switch {
			case err == unix.EAGAIN:
				return false
			case err == unix.EINTR:
				continue
			case err == unix.EINVAL || err == unix.EMSGSIZE:
				// A malformed or oversized frame: skip it, keep the batch.
				n++
				continue
			case err != nil:
				werr = err
				return true
			}
			n++
		}
		return true
	})
	if err != nil {
		return n, t.closedOr(err)
	}
	if werr != nil {
		return n, t.closedOr(werr)
	}
	return n, nil
}

// Dropped reports frames dropped because they did not fit the read buffer.
func (t *linuxTAP) Dropped() uint64 { return t.drops.Load() }

func (t *linuxTAP) Close() error {
	t.closed.Store(true)
	err := t.ifce.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// closedOr maps the file's "already closed" to net.ErrClosed, the one
// shutdown signal the rest of ipopd checks for.
func (t *linuxTAP) closedOr(err error) error {
	// RawConn reports a closing file as poll's own "use of closed file",
	// which matches no exported error; the flag says what happened.
	if t.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADF) {
		return net.ErrClosed
	}
	return fmt.Errorf("tap: %w", err)
}

// The bridge port's multicast_router setting: 2 is a permanent router
// port, which gets every group's traffic whoever the querier is.
const mcastRouterPermanent = 2

// setMulticastRouter sets the bridge port's multicast_router (what
// `bridge link set dev TAP mcast_router 2` does). The TAP is the LAN's
// way to the overlay's members, so it must get all multicast, as a
// router's port does. By default the bridge learns router ports from
// queries, so the TAP kept that role only while ipopd was the querier:
// with another querier on the LAN (a real router), the port's router
// timer ran out after 255 s and LAN multicast stopped reaching the
// overlay. netlink has no call for it, so the request is built here, as
// its own LinkSetHairpin builds its IFLA_PROTINFO attributes.
func setMulticastRouter(link netlink.Link, mode uint8) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(link.Attrs().Index)
	req.AddData(msg)
	br := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	br.AddRtAttr(nl.IFLA_BRPORT_MULTICAST_ROUTER, []byte{mode})
	req.AddData(br)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
