// Package taptest provides an in-memory tap.Device for tests that need no
// root: the test plays the kernel, injecting frames for ipopd to read and
// collecting the frames ipopd writes.
package taptest

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/tap"
)

// Device is a fake TAP. Its queues hold copies, so callers may reuse buffers.
type Device struct {
	name  string
	mtu   int
	mac   net.HardwareAddr
	in    chan []byte // "kernel" → ipopd
	out   chan []byte // ipopd → "kernel"
	done  chan struct{}
	once  sync.Once
	drops atomic.Uint64
}

var _ tap.Device = (*Device)(nil)

// New returns a fake TAP whose queues hold queue frames each way.
func New(name string, mtu int, mac net.HardwareAddr, queue int) *Device {
	return &Device{
		name: name, mtu: mtu, mac: mac,
		in:   make(chan []byte, queue),
		out:  make(chan []byte, queue),
		done: make(chan struct{}),
	}
}

// Inject queues a copy of frame for Read, blocking while the queue is full.
// It reports false once the device is closed.
func (d *Device) Inject(frame []byte) bool {
	select {
	case <-d.done:
		return false
	default:
	}
	select {
	case d.in <- append([]byte(nil), frame...):
		return true
	case <-d.done:
		return false
	}
}

// Written delivers copies of the frames passed to Write, in order.
func (d *Device) Written() <-chan []byte { return d.out }

// Read implements tap.Device.
func (d *Device) Read(bufs [][]byte, sizes []int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	select {
	case f := <-d.in:
		n := d.put(bufs, sizes, 0, f)
		for n < len(bufs) {
			select {
			case f := <-d.in:
				n = d.put(bufs, sizes, n, f)
				continue
			default:
			}
			break
		}
		if n == 0 {
			return d.Read(bufs, sizes) // everything queued was too long
		}
		return n, nil
	case <-d.done:
		return 0, net.ErrClosed
	}
}

func (d *Device) put(bufs [][]byte, sizes []int, n int, f []byte) int {
	if len(f) >= len(bufs[n]) {
		d.drops.Add(1) // same rule as the real TAP: never hand on a cut frame
		return n
	}
	sizes[n] = copy(bufs[n], f)
	return n + 1
}

// Write implements tap.Device. It blocks while the Written queue is full.
func (d *Device) Write(frames [][]byte) (int, error) {
	for i, f := range frames {
		select {
		case d.out <- append([]byte(nil), f...):
		case <-d.done:
			return i, net.ErrClosed
		}
	}
	return len(frames), nil
}

func (d *Device) Name() string                   { return d.name }
func (d *Device) MTU() int                       { return d.mtu }
func (d *Device) HardwareAddr() net.HardwareAddr { return d.mac }
func (d *Device) Dropped() uint64                { return d.drops.Load() }

// Close implements tap.Device; it is idempotent.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
