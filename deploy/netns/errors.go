package netns

import "errors"

var (
	// ErrClosed is returned by methods of a Testbed after Close.
	ErrClosed = errors.New("netns: testbed closed")
	// ErrLabel means a host or process label is empty, too long, has
	// characters other than letters, digits, '_', '.' and '-', or is taken.
	ErrLabel = errors.New("netns: invalid or duplicate label")
	// ErrNotRouter means AddHostBehind got a host that is not a NAT router
	// of this testbed.
	ErrNotRouter = errors.New("netns: not a NAT router of this testbed")
	// ErrExhausted means a testbed ran out of public or LAN addresses.
	ErrExhausted = errors.New("netns: addresses exhausted")
	// ErrIgnoredTerm means a process was still running after SIGTERM and its
	// grace period, and had to be killed.
	ErrIgnoredTerm = errors.New("netns: process ignored SIGTERM")
)
