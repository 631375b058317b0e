package topology

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// ErrNeighbors: bytes that are not a Neighbors message this code knows
// (another version, truncated, trailing bytes, unknown flag bits, zero or
// unsorted IDs, a count over MaxNeighbors). Wrapped with detail. Like a
// bad membership message, it is dropped and counted; the link stays up.
var ErrNeighbors = errors.New("topology: malformed neighbors message")

// Neighbors is a node's announcement of its links (see Ring.Tick for the
// protocol). It is sent on a link only, never routed: a node believes
// what a node it is linked to says about that node's own links.
type Neighbors struct {
	Links []NeighborLink // ascending by ID, each once, none zero
}

// NeighborLink is one link of the sender.
type NeighborLink struct {
	ID nodeid.ID
	// Wanted: the sender keeps the link for its own reasons (successor,
	// chord or on-demand). A link stays up while either end wants it.
	Wanted bool
}

// Wire layout of Neighbors, integers big-endian, 4-byte header:
//
//	0  version  1  neighborsVersion (0x10)
//	1  flags    1  0
//	2  count    2  0..MaxNeighbors
//	4  links    count × 33, strictly ascending by ID:
//	              flags 1 (bit 0: Wanted; other bits 0), ID 32 (not zero)
//
// The version byte differs from the membership message's (1) and the
// route header's (0x20), so one control channel can tell them apart by
// their first byte. As with membership messages, every value has one
// encoding, so the strict decoder is also canonical.
const (
	neighborsVersion   = 0x10
	neighborsHeaderLen = 4
	neighborLinkLen    = 1 + 32
	neighborWanted     = 1 << 0

	// MaxNeighbors bounds the links one message lists, and so what a
	// hostile message costs (8.4 KB). A node has successors, chords,
	// on-demand links and the links of nodes that chose it: a few dozen
	// in practice (40 fit in 1,350 bytes; carrying more is the link's job,
	// as for a large membership Full). Ring.Neighbors keeps wanted links
	// first if there are more.
	MaxNeighbors = 256
)

// Size returns the length of m's encoding.
func (m *Neighbors) Size() int { return neighborsHeaderLen + neighborLinkLen*len(m.Links) }

// MarshalBinary encodes m. It refuses (ErrNeighbors) what
// UnmarshalBinary would refuse.
func (m *Neighbors) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.Size()))
}

// AppendBinary appends m's encoding to b.
func (m *Neighbors) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Links) > MaxNeighbors {
		return b, fmt.Errorf("%w: %d links, at most %d", ErrNeighbors, len(m.Links), MaxNeighbors)
	}
	for i, l := range m.Links {
		if err := checkNeighbor(m.Links[:i], l.ID); err != nil {
			return b, fmt.Errorf("link %d: %w", i, err)
		}
	}
	b = append(b, neighborsVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Links)))
	for _, l := range m.Links {
		var f byte
		if l.Wanted {
			f = neighborWanted
		}
		b = append(b, f)
		b = append(b, l.ID[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes b into m, replacing all of m; on error (always
// wrapping ErrNeighbors) m is left empty. Memory is bounded by len(b).
func (m *Neighbors) UnmarshalBinary(b []byte) error {
	m.Links = nil
	if err := m.decode(b); err != nil {
		m.Links = nil
		return err
	}
	return nil
}

func (m *Neighbors) decode(b []byte) error {
	switch {
	case len(b) < neighborsHeaderLen:
		return fmt.Errorf("%w: %d bytes, header is %d", ErrNeighbors, len(b), neighborsHeaderLen)
	case b[0] != neighborsVersion:
		return fmt.Errorf("%w: version %#02x", ErrNeighbors, b[0])
	case b[1] != 0:
		return fmt.Errorf("%w: flags %#02x", ErrNeighbors, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	r := b[neighborsHeaderLen:]
	switch {
	case n > MaxNeighbors:
		return fmt.Errorf("%w: %d links, at most %d", ErrNeighbors, n, MaxNeighbors)
	case len(r) != n*neighborLinkLen:
		return fmt.Errorf("%w: %d links in %d bytes", ErrNeighbors, n, len(r))
	}
	if n > 0 {
		m.Links = make([]NeighborLink, n)
	}
	for i := range m.Links {
		e := r[i*neighborLinkLen : (i+1)*neighborLinkLen]
		if e[0]&^neighborWanted != 0 {
			return fmt.Errorf("%w: link %d: flags %#02x", ErrNeighbors, i, e[0])
		}
		id := nodeid.ID(e[1:])
		if err := checkNeighbor(m.Links[:i], id); err != nil {
			return fmt.Errorf("link %d: %w", i, err)
		}
		m.Links[i] = NeighborLink{ID: id, Wanted: e[0] == neighborWanted}
	}
	return nil
}

// checkNeighbor checks a link's ID against the ones before it.
func checkNeighbor(before []NeighborLink, id nodeid.ID) error {
	if id.IsZero() {
		return fmt.Errorf("%w: zero ID", ErrNeighbors)
	}
	if n := len(before); n > 0 && before[n-1].ID.Compare(id) >= 0 {
		return fmt.Errorf("%w: %s out of order", ErrNeighbors, id.Short())
	}
	return nil
}
