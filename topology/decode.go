package topology

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
)

// UnmarshalBinary decodes b (the layout is documented above wireVersion) into m,
// replacing all of m. It enforces every rule MarshalBinary does and returns
// an error wrapping ErrVersion, ErrMalformed or ErrLimit for anything else;
// on error m is left zero. Memory is bounded by len(b): every count is
// checked against the bytes left before its slice is made. m keeps no
// reference to b.
func (m *Message) UnmarshalBinary(b []byte) error {
	*m = Message{}
	if err := m.decode(b); err != nil {
		*m = Message{}
		return err
	}
	return nil
}

func (m *Message) decode(b []byte) error {
	if len(b) < 1 || b[0] != wireVersion {
		if len(b) == 0 {
			return fmt.Errorf("%w: empty message", ErrMalformed)
		}
		return fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d-byte message, header is %d", ErrMalformed, len(b), headerLen)
	}
	m.Kind = Kind(b[1])
	m.Epoch = binary.BigEndian.Uint64(b[2:])
	m.Seq = binary.BigEndian.Uint64(b[10:])
	m.Refresh = time.Duration(binary.BigEndian.Uint16(b[18:])) * time.Second
	n := int(binary.BigEndian.Uint16(b[20:]))
	if m.Kind < KindFull || m.Kind > KindPart {
		return fmt.Errorf("%w: %v", ErrMalformed, m.Kind)
	}
	if err := checkRefresh(m.Kind, m.Refresh); err != nil {
		return err
	}
	if err := checkCount(m.Kind, m.Seq, n); err != nil {
		return err
	}
	r := b[headerLen:]
	if m.Kind == KindPart {
		if len(r) < partLen {
			return fmt.Errorf("%w: part header truncated", ErrMalformed)
		}
		m.Part, m.Parts = int(binary.BigEndian.Uint16(r)), int(binary.BigEndian.Uint16(r[2:]))
		if err := checkPart(m.Kind, m.Part, m.Parts); err != nil {
			return err
		}
		r = r[partLen:]
	}
	if n > len(r)/minGroupLen {
		return fmt.Errorf("%w: %d groups cannot fit in %d bytes", ErrMalformed, n, len(r))
	}
	if n > 0 {
		m.Groups = make([]Group, n)
	}
	for i := range m.Groups {
		var err error
		if r, err = m.decodeGroup(i, r); err != nil {
			return err
		}
	}
	if len(r) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r))
	}
	return nil
}

// decodeGroup reads group record i from r and returns what follows it.
func (m *Message) decodeGroup(i int, r []byte) ([]byte, error) {
	g := &m.Groups[i]
	if len(r) < 1 {
		return nil, fmt.Errorf("%w: group %d truncated", ErrMalformed, i)
	}
	flags := r[0]
	if flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: group %d: flags %#02x", ErrMalformed, i, flags)
	}
	al := 4
	if flags&flagIPv6 != 0 {
		al = 16
	}
	if flags&flagExclude != 0 {
		g.Filter.Mode = filter.Exclude
	}
	r = r[1:]
	if len(r) < al+2 {
		return nil, fmt.Errorf("%w: group %d truncated", ErrMalformed, i)
	}
	g.Addr = addrFrom(r[:al])
	if !validGroup(g.Addr) {
		return nil, fmt.Errorf("%w: group %d: %v is not a multicast group", ErrMalformed, i, g.Addr)
	}
	if i > 0 && m.Groups[i-1].Addr.Compare(g.Addr) >= 0 {
		return nil, fmt.Errorf("%w: group %d: %v out of order", ErrMalformed, i, g.Addr)
	}
	ns := int(binary.BigEndian.Uint16(r[al:]))
	r = r[al+2:]
	if err := checkFilter(m.Kind, g.Filter, ns); err != nil {
		return nil, fmt.Errorf("group %d (%v): %w", i, g.Addr, err)
	}
	if ns > len(r)/al {
		return nil, fmt.Errorf("%w: group %d: %d sources cannot fit in %d bytes", ErrMalformed, i, ns, len(r))
	}
	if ns > 0 {
		g.Filter.Sources = make([]netip.Addr, ns)
	}
	for j := range g.Filter.Sources {
		s := addrFrom(r[:al])
		if err := checkSource(g.Addr, g.Filter.Sources[:j], s); err != nil {
			return nil, fmt.Errorf("group %d (%v): source %d: %w", i, g.Addr, j, err)
		}
		g.Filter.Sources[j] = s
		r = r[al:]
	}
	return r, nil
}

// addrFrom reads a 4- or 16-byte address; b has exactly that length.
func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}
