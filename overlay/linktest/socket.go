package linktest

import (
	"sync"
	"sync/atomic"

	"github.com/ipopd/ipopd/nat"
)

// RecordingSocket is a nat.Socket that also keeps a copy of every data
// packet sent through WriteBatch (what the data plane sends), so tests can
// replay or inspect them.
type RecordingSocket struct {
	*nat.Socket
	// Blackhole, while set, makes WriteBatch drop every packet (it
	// reports them sent): the data path dies, ICE's checks still pass.
	Blackhole atomic.Bool
	mu        sync.Mutex
	sent      []nat.Packet
}

// WriteBatch records pkts, then sends them.
func (s *RecordingSocket) WriteBatch(pkts []nat.Packet) (int, error) {
	if s.Blackhole.Load() {
		return len(pkts), nil
	}
	s.mu.Lock()
	for _, p := range pkts {
		s.sent = append(s.sent, nat.Packet{Data: append([]byte(nil), p.Data...), Addr: p.Addr})
	}
	s.mu.Unlock()
	return s.Socket.WriteBatch(pkts)
}

// Sent returns copies of the packets sent so far.
func (s *RecordingSocket) Sent() []nat.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nat.Packet(nil), s.sent...)
}
