package topology

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Wire layout of a TreeMsg, integers big-endian:
//
//	0  version  1  treeWireVersion (1)
//	1  kind     1  1 join, 2 prune, 3 redirect, 4 ack
//	2  flags    1  bit 0: IPv6 (addresses are 16 bytes, else 4);
//	               bit 1: EXCLUDE (join only); bit 2: avoid (join
//	               only); other bits 0
//	3  group    4|16  a multicast group
//	.  join:     nsrc 2 (0..MaxSources; ≥1 when INCLUDE), sources, strictly ascending;
//	             with bit 2, avoid 32: a node ID, not zero
//	.  redirect: to 32, a node ID, not zero
//	.  ack:      depth 1, 0..MaxTreeDepth+1 (the last: in a cycle)
//	.  prune, query: nothing
//	.  info:     depth 1 (as ack), parent 32 (zero: none), n 1
//	             (0..MaxInfoChildren), children n × 32, strictly
//	             ascending, none zero nor the parent; flag bit 3: root
//	             (then no parent)
//
// Every message has one encoding, as membership messages do.
const treeWireVersion = 1

// treeFlagAvoid: a join names a node the parent is not to redirect it to.
const treeFlagAvoid = 1 << 2

// treeFlagRoot: an info's sender is the root.
const treeFlagRoot = 1 << 3

// MarshalBinary encodes m; it refuses what UnmarshalBinary would refuse.
func (m *TreeMsg) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var flags byte
	if m.Group.Is6() {
		flags |= flagIPv6
	}
	if m.Kind == TreeJoin && m.Filter.Mode == filter.Exclude {
		flags |= flagExclude
	}
	if !m.Avoid.IsZero() {
		flags |= treeFlagAvoid
	}
	if m.Root {
		flags |= treeFlagRoot
	}
	b := appendAddr([]byte{treeWireVersion, byte(m.Kind), flags}, m.Group)
	switch m.Kind {
	case TreeJoin:
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Filter.Sources)))
		for _, s := range m.Filter.Sources {
			b = appendAddr(b, s)
		}
		if !m.Avoid.IsZero() {
			b = append(b, m.Avoid[:]...)
		}
	case TreeRedirect:
		b = append(b, m.To[:]...)
	case TreeAck:
		b = append(b, byte(m.Depth))
	case TreeInfo:
		b = append(b, byte(m.Depth))
		b = append(b, m.Parent[:]...)
		b = append(b, byte(len(m.Children)))
		for _, c := range m.Children {
			b = append(b, c[:]...)
		}
	}
	return b, nil
}

func (m *TreeMsg) validate() error {
	switch {
	case m.Kind < TreeJoin || m.Kind > TreeInfo:
		return fmt.Errorf("%w: tree message kind %d", ErrMalformed, m.Kind)
	case !validGroup(m.Group):
		return fmt.Errorf("%w: %v is not a multicast group", ErrMalformed, m.Group)
	case m.Kind == TreeRedirect && m.To.IsZero():
		return fmt.Errorf("%w: redirect to no node", ErrMalformed)
	case (m.Kind == TreeAck || m.Kind == TreeInfo) && (m.Depth < 0 || m.Depth > MaxTreeDepth+1):
		return fmt.Errorf("%w: depth %d, at most %d", ErrLimit, m.Depth, MaxTreeDepth+1)
	case m.Kind != TreeJoin && (m.Filter.Mode != filter.Include || len(m.Filter.Sources) != 0):
		return fmt.Errorf("%w: a filter in a %d", ErrMalformed, m.Kind)
	case m.Kind != TreeRedirect && !m.To.IsZero(), m.Kind != TreeAck && m.Kind != TreeInfo && m.Depth != 0,
		m.Kind != TreeJoin && !m.Avoid.IsZero(), m.Kind != TreeInfo && (m.Root || !m.Parent.IsZero() || len(m.Children) != 0):
		return fmt.Errorf("%w: fields of another kind", ErrMalformed)
	case m.Kind == TreeInfo:
		return checkInfo(m)
	case m.Kind != TreeJoin:
		return nil
	}
	if err := checkFilter(KindFull, m.Filter, len(m.Filter.Sources)); err != nil {
		return err
	}
	for j, s := range m.Filter.Sources {
		if err := checkSource(m.Group, m.Filter.Sources[:j], s); err != nil {
			return fmt.Errorf("source %d: %w", j, err)
		}
	}
	return nil
}

// UnmarshalBinary decodes b into m, strictly (errors wrap ErrVersion,
// ErrMalformed or ErrLimit; m is left zero on error). Memory is bounded
// by len(b).
func (m *TreeMsg) UnmarshalBinary(b []byte) error {
	*m = TreeMsg{}
	if err := m.decode(b); err != nil {
		*m = TreeMsg{}
		return err
	}
	return nil
}

func (m *TreeMsg) decode(b []byte) error {
	if len(b) < 3 {
		return fmt.Errorf("%w: %d-byte tree message", ErrMalformed, len(b))
	}
	if b[0] != treeWireVersion {
		return fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	m.Kind = TreeKind(b[1])
	flags := b[2]
	if m.Kind < TreeJoin || m.Kind > TreeInfo {
		return fmt.Errorf("%w: tree message kind %d", ErrMalformed, m.Kind)
	}
	if flags&^(knownFlags|treeFlagAvoid|treeFlagRoot) != 0 || flags&(flagExclude|treeFlagAvoid) != 0 && m.Kind != TreeJoin ||
		flags&treeFlagRoot != 0 && m.Kind != TreeInfo {
		return fmt.Errorf("%w: flags %#02x", ErrMalformed, flags)
	}
	al := 4
	if flags&flagIPv6 != 0 {
		al = 16
	}
	r := b[3:]
	if len(r) < al {
		return fmt.Errorf("%w: group truncated", ErrMalformed)
	}
	m.Group, r = addrFrom(r[:al]), r[al:]
	if !validGroup(m.Group) {
		return fmt.Errorf("%w: %v is not a multicast group", ErrMalformed, m.Group)
	}
	switch m.Kind {
	case TreeJoin:
		if len(r) < 2 {
			return fmt.Errorf("%w: join truncated", ErrMalformed)
		}
		if flags&flagExclude != 0 {
			m.Filter.Mode = filter.Exclude
		}
		ns := int(binary.BigEndian.Uint16(r))
		r = r[2:]
		if err := checkFilter(KindFull, m.Filter, ns); err != nil {
			return err
		}
		if flags&treeFlagAvoid != 0 {
			if len(r) < len(nodeid.ID{}) {
				return fmt.Errorf("%w: join's avoid truncated", ErrMalformed)
			}
			n := len(r) - len(nodeid.ID{})
			if m.Avoid, r = nodeid.ID(r[n:]), r[:n]; m.Avoid.IsZero() {
				return fmt.Errorf("%w: join avoiding no node", ErrMalformed)
			}
		}
		if ns != len(r)/al || len(r)%al != 0 {
			return fmt.Errorf("%w: %d sources in %d bytes", ErrMalformed, ns, len(r))
		}
		if ns > 0 {
			m.Filter.Sources = make([]netip.Addr, ns)
		}
		for j := range m.Filter.Sources {
			s := addrFrom(r[:al])
			if err := checkSource(m.Group, m.Filter.Sources[:j], s); err != nil {
				return fmt.Errorf("source %d: %w", j, err)
			}
			m.Filter.Sources[j], r = s, r[al:]
		}
	case TreeRedirect:
		if len(r) != len(nodeid.ID{}) {
			return fmt.Errorf("%w: redirect of %d bytes", ErrMalformed, len(r))
		}
		m.To, r = nodeid.ID(r), nil
		if m.To.IsZero() {
			return fmt.Errorf("%w: redirect to no node", ErrMalformed)
		}
	case TreeAck:
		if len(r) != 1 {
			return fmt.Errorf("%w: ack of %d bytes", ErrMalformed, len(r))
		}
		if m.Depth, r = int(r[0]), nil; m.Depth > MaxTreeDepth+1 {
			return fmt.Errorf("%w: depth %d, at most %d", ErrLimit, m.Depth, MaxTreeDepth+1)
		}
	case TreeInfo:
		const id = len(nodeid.ID{})
		if len(r) < 1+id+1 {
			return fmt.Errorf("%w: info truncated", ErrMalformed)
		}
		m.Depth, m.Parent, m.Root = int(r[0]), nodeid.ID(r[1:1+id]), flags&treeFlagRoot != 0
		n := int(r[1+id])
		if r = r[2+id:]; n > MaxInfoChildren || len(r) != n*id {
			return fmt.Errorf("%w: info of %d children in %d bytes", ErrMalformed, n, len(r))
		}
		for i := range n {
			m.Children = append(m.Children, nodeid.ID(r[i*id:(i+1)*id]))
		}
		r = nil
		if err := checkInfo(m); err != nil {
			return err
		}
	}
	if len(r) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r))
	}
	return nil
}

// checkInfo checks a TreeInfo's fields.
func checkInfo(m *TreeMsg) error {
	switch {
	case m.Depth > MaxTreeDepth+1:
		return fmt.Errorf("%w: depth %d, at most %d", ErrLimit, m.Depth, MaxTreeDepth+1)
	case m.Root && !m.Parent.IsZero():
		return fmt.Errorf("%w: a root with a parent", ErrMalformed)
	case len(m.Children) > MaxInfoChildren:
		return fmt.Errorf("%w: %d children, at most %d", ErrLimit, len(m.Children), MaxInfoChildren)
	}
	for i, c := range m.Children {
		if c.IsZero() || c == m.Parent || i > 0 && c.Compare(m.Children[i-1]) <= 0 {
			return fmt.Errorf("%w: child %d", ErrMalformed, i)
		}
	}
	return nil
}
