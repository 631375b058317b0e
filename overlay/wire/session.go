package wire

// Where a Session sits on the data path:
//
//	send:    TAP reader ─► classify/route ─► Seal ─► batch ─► UDP sendmmsg
//	                                          │
//	                                          counter: one atomic add; AES-GCM in the caller
//
//	receive: UDP recvmmsg ─► IsData (first byte) ─► Open ─► TAP write / forward
//	                                                 │
//	                                                 AES-GCM in the caller, then the replay
//	                                                 window under a lock held for a bit test
//
// Nothing here is sequential across goroutines except those two points, so
// any number of reader goroutines may Seal and Open on one Session at once.
// Concurrent sealers put counters on the wire slightly out of order; the
// receiver's window absorbs that.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// Session holds one link's data keys: one direction to Seal, the other to
// Open. It is created after each DTLS handshake and replaced, never
// updated, when the link rekeys. All methods are safe for concurrent use.
type Session struct {
	send direction
	recv direction

	// sendCtr is the last counter handed out; Seal adds 1 before use, so
	// the first packet carries base+1. It also counts Stats.Sealed.
	sendCtr atomic.Uint64
	// base is added to every counter this Session seals: a Keyring puts
	// the key generation in the top bits (generationShift).
	base uint64

	// Error counters: atomics, touched only on the (rare) error paths.
	authFailed atomic.Uint64
	short      atomic.Uint64
	badType    atomic.Uint64

	// rxMu guards the fields below. It is held only to test and set one
	// window bit after a packet has authenticated, never during crypto.
	rxMu     sync.Mutex
	window   ReplayWindow
	opened   uint64
	replayed uint64
}

// direction is one way's AEAD and the salt that prefixes its nonces. The
// AEAD from cipher.NewGCM is immutable after construction and safe to use
// from many goroutines, as wireguard-go's encryption workers rely on too.
type direction struct {
	aead cipher.AEAD
	salt [saltLen]byte
}

// Stats counts what a Session did. Every Open call lands in exactly one of
// Opened, AuthFailed, Replayed, Short and BadType.
type Stats struct {
	Sealed     uint64 // packets sealed
	Opened     uint64 // packets authenticated and accepted
	AuthFailed uint64 // ErrAuth
	Replayed   uint64 // ErrReplay
	Short      uint64 // ErrShort
	BadType    uint64 // ErrType
}

// NewSession splits exported keying material (ExporterLen bytes, see
// ExporterLen) into the two directions. The DTLS client sends with the first
// half and the server with the second, so both ends pass the same ekm and
// their own role. The Session keeps no reference to ekm; the caller may
// wipe it.
func NewSession(ekm []byte, isClient bool) (*Session, error) {
	if len(ekm) != ExporterLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKeyMaterial, len(ekm), ExporterLen)
	}
	half := ExporterLen / 2
	c2s, s2c := ekm[:half], ekm[half:]
	// Equal halves would let an attacker reflect our own packets back at
	// us and have them authenticate. Exported material never does this; a
	// caller passing zeros or a truncated buffer would.
	if bytes.Equal(c2s, s2c) {
		return nil, fmt.Errorf("%w: both directions have the same key", ErrKeyMaterial)
	}
	if !isClient {
		c2s, s2c = s2c, c2s
	}
	s := new(Session)
	if err := s.send.init(c2s); err != nil {
		return nil, err
	}
	if err := s.recv.init(s2c); err != nil {
		return nil, err
	}
	return s, nil
}

func (d *direction) init(keySalt []byte) error {
	block, err := aes.NewCipher(keySalt[:keyLen])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeyMaterial, err)
	}
	if d.aead, err = cipher.NewGCM(block); err != nil {
		return fmt.Errorf("%w: %v", ErrKeyMaterial, err)
	}
	copy(d.salt[:], keySalt[keyLen:])
	return nil
}

// noncePool recycles nonce buffers. A nonce on the stack would escape to
// the heap, because escape analysis cannot see through the cipher.AEAD
// interface call, and cost an allocation per packet. Nonces are public, so
// sessions share the pool.
var noncePool = sync.Pool{New: func() any { return new([nonceLen]byte) }}

func (d *direction) nonce(ctr uint64) *[nonceLen]byte {
	n := noncePool.Get().(*[nonceLen]byte)
	copy(n[:saltLen], d.salt[:])
	binary.BigEndian.PutUint64(n[saltLen:], ctr)
	return n
}

// Seal appends the data packet carrying frame to dst and returns the
// extended slice. It allocates only when cap(dst) is short of
// len(dst)+len(frame)+Overhead. frame may be sealed in place: pass
// buf[:0] as dst with the frame at buf[HeaderLen:].
//
// After ErrKeyExhausted, dst is returned unchanged and every later Seal
// fails the same way.
func (s *Session) Seal(dst, frame []byte) ([]byte, error) {
	return s.SealFlags(dst, 0, frame)
}

// SealFlags is Seal with the header's flags set, e.g. FlagControl for a
// control message. The flags are authenticated with the packet.
func (s *Session) SealFlags(dst []byte, flags byte, frame []byte) ([]byte, error) {
	ctr := s.sendCtr.Add(1)
	if ctr >= CounterLimit || s.base != 0 && ctr >= 1<<generationShift {
		return dst, ErrKeyExhausted
	}
	ctr += s.base
	start := len(dst)
	dst = append(dst, TypeData, flags, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(dst[start+counterOff:], ctr)
	// The header is the additional data while the output is appended after
	// it; the two never overlap (crypto/tls seals TLS 1.3 records the same
	// way).
	n := s.send.nonce(ctr)
	dst = s.send.aead.Seal(dst, n[:], frame, dst[start:])
	noncePool.Put(n)
	return dst, nil
}

// Open authenticates pkt, checks its counter against the replay window and
// appends the frame to dst. It allocates only when cap(dst) is short of
// len(dst)+len(pkt)-Overhead. pkt may be opened in place: pass
// pkt[HeaderLen:HeaderLen] as dst.
//
// On error dst is returned with its length unchanged, though its spare
// capacity may have been written. A packet that fails authentication
// leaves the window untouched.
func (s *Session) Open(dst, pkt []byte) ([]byte, error) {
	out, flags, err := s.OpenFlags(dst, pkt)
	if err == nil && flags != 0 {
		// A control message is not a frame; callers that expect control
		// messages use OpenFlags. The counter is spent: this is no replay
		// hole, the packet was authentic and is simply not delivered.
		s.badType.Add(1)
		return dst, ErrType
	}
	return out, err
}

// OpenFlags is Open for packets that may carry flags: it returns the payload
// and the header's flags (FlagControl, FlagRouted). Unknown flags are ErrType.
func (s *Session) OpenFlags(dst, pkt []byte) ([]byte, byte, error) {
	out, err := s.open(dst, pkt)
	if err != nil {
		return dst, 0, err
	}
	return out, pkt[flagsOff], nil
}

func (s *Session) open(dst, pkt []byte) ([]byte, error) {
	if !IsData(pkt) {
		if len(pkt) == 0 {
			s.short.Add(1)
			return dst, ErrShort
		}
		s.badType.Add(1)
		return dst, ErrType
	}
	if len(pkt) < Overhead {
		s.short.Add(1)
		return dst, ErrShort
	}
	ctr := binary.BigEndian.Uint64(pkt[counterOff:])
	n := s.recv.nonce(ctr)
	out, err := s.recv.aead.Open(dst, n[:], pkt[HeaderLen:], pkt[:HeaderLen])
	noncePool.Put(n)
	if err != nil {
		s.authFailed.Add(1)
		return dst, ErrAuth
	}
	// Flags are checked only now: a forged packet is ErrAuth whatever its
	// flags say, and an authentic one from a newer peer is refused instead
	// of being misread. It does not move the window.
	if pkt[flagsOff]&^knownFlags != 0 {
		s.badType.Add(1)
		return dst, ErrType
	}
	s.rxMu.Lock()
	ok := s.window.Accept(ctr)
	if ok {
		s.opened++
	} else {
		s.replayed++
	}
	s.rxMu.Unlock()
	if !ok {
		return dst, ErrReplay
	}
	return out, nil
}

// Stats returns a snapshot of the counters. Fields are read one by one, so
// under concurrent traffic they may be a few packets apart.
func (s *Session) Stats() Stats {
	st := Stats{
		Sealed:     min(s.sendCtr.Load(), CounterLimit-1),
		AuthFailed: s.authFailed.Load(),
		Short:      s.short.Load(),
		BadType:    s.badType.Load(),
	}
	s.rxMu.Lock()
	st.Opened, st.Replayed = s.opened, s.replayed
	s.rxMu.Unlock()
	return st
}
