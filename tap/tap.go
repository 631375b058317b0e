// Package tap owns the virtual Ethernet interface that local applications (host
// mode) or a bridged LAN (switch mode) see as "the overlay".
//
// A Device moves whole Ethernet frames, in batches, between ipopd and the
// kernel. The Linux implementation (Open) creates the TAP with
// github.com/songgao/water and configures it with netlink; tap/taptest holds an
// in-memory fake for tests that need no root.
package tap

import (
	"net"
	"net/netip"
)

// EthHeaderLen is the Ethernet header without a VLAN tag. Frames carry no FCS.
const EthHeaderLen = 14

// MaxFrame returns the largest frame a TAP with this MTU can hand us: the MTU
// plus the Ethernet header and room for one 802.1Q tag (switch mode bridges
// may carry tagged frames).
func MaxFrame(mtu int) int { return mtu + EthHeaderLen + 4 }

// Device reads and writes batches of Ethernet frames.
//
// Buffer ownership: Read fills the caller's buffers and never keeps them;
// Write does not keep the frames after it returns. One goroutine may Read while
// another Writes; two concurrent Reads (or Writes) are not supported.
// After Close, Read and Write return net.ErrClosed.
type Device interface {
	// Read blocks until at least one frame is available, then reads as many
	// as are queued, up to len(bufs): frame i is bufs[i][:sizes[i]]. Each
	// buffer should hold MaxFrame(MTU()) bytes; a longer frame is dropped
	// and counted, not truncated.
	Read(bufs [][]byte, sizes []int) (n int, err error)
	// Write hands each frame to the kernel and returns how many were
	// written before the first error.
	Write(frames [][]byte) (n int, err error)
	// Name is the interface name, e.g. "ipop0".
	Name() string
	// MTU is the interface MTU (IP payload, not counting the Ethernet header).
	MTU() int
	// HardwareAddr is the TAP's own MAC address.
	HardwareAddr() net.HardwareAddr
	// Dropped counts frames Read discarded because they did not fit.
	Dropped() uint64
	// Close removes the interface (it is not persistent).
	Close() error
}

// Mode says how the TAP meets the world.
type Mode string

// The two modes of the config contract's tap.mode.
const (
	// ModeHost gives the TAP the node's own overlay addresses.
	ModeHost Mode = "host"
	// ModeSwitch enslaves the TAP to an existing Linux bridge that holds the
	// LAN ports; the TAP itself needs no address.
	ModeSwitch Mode = "switch"
)

// Config is what Open needs; cmd/ipopd fills it from the validated config.
type Config struct {
	Name     string
	Mode     Mode
	Address  netip.Prefix // IPv4, optional in switch mode
	Address6 netip.Prefix // IPv6, optional
	MTU      int
	Bridge   string // switch mode: the bridge to join
	// MAC, if set, is the TAP's own address (else the kernel picks one at
	// random). ipopd derives it from the node ID, so that a restarted node
	// keeps it and its peers' neighbour caches stay right.
	MAC net.HardwareAddr
}
