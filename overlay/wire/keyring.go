package wire

// Keys that rotate. A link (or an end-to-end pair) starts from one root
// secret both ends hold (exported from the DTLS handshake) and moves
// through generations of keys, each a fresh Session:
//
//	root(0) ─► keys(0) = HKDF-Expand(root(0), "ipopd keys", ExporterLen)
//	   │
//	   └─► root(1) = HKDF-Expand(root(0), "ipopd next", RootLen) ─► keys(1) …
//
// Each end moves its sending direction to the next generation every
// RekeyInterval (if the current one has sent anything) or after
// RekeyPackets packets, whichever first; the two directions move
// independently. A packet's counter carries its generation in the top
// bits (generationShift), authenticated with the rest of the header, so
// the receiver opens it with that generation: the current one, the one
// before (packets still on their way when the sender moved on: a switch
// loses nothing), or up to maxJump ahead, which becomes current at its
// first authentic packet. Roots behind those are erased and their
// sessions dropped, so what a live node holds opens only its last
// generations' traffic.
//
// An indexed keyring (NewIndexedKeyring) is for a root either end can
// derive again at any time (end-to-end keys from static keys, where a
// chain would add no forward secrecy): root(n) = HKDF-Expand(root(0),
// "ipopd generation" ‖ n), each in one step, and the receiver follows a
// packet of any generation ahead, not only maxJump: a node that restarts
// (or forgot idle keys) opens a long-running sender's traffic at once,
// and an old packet replayed to it first cannot hold it behind the
// sender's generation (each generation ahead costs one HKDF to try).

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// RootLen is the root secret: what the handshake exports.
	RootLen = 32
	// RekeyInterval is how often sending keys move on at the latest.
	RekeyInterval = 2 * time.Minute
	// RekeyPackets bounds the packets one generation seals, far inside
	// AES-GCM's limits.
	RekeyPackets = 1 << 32

	// generationShift places the generation in the counter: 24 bits of
	// generation (decades at one a minute), 40 of packets.
	generationShift = 40
	// maxJump bounds how far ahead of the newest generation opened a
	// packet may be (generations whose packets were all lost).
	maxJump = 8
)

// Keyring is a link's rotating keys. Seal and Open are safe for
// concurrent use; RotateIfDue may be called from any goroutine.
type Keyring struct {
	isClient bool
	interval time.Duration
	limit    uint64 // packets per generation: RekeyPackets (tests lower it)

	send atomic.Pointer[generation] // the generation Seal uses
	recv atomic.Pointer[recvSet]    // what Open uses; replaced whole

	mu    sync.Mutex // guards roots and ahead, and serialises moving on
	roots map[uint64][]byte
	ahead *generation // the last generation derived ahead of recv (not yet authentic)

	// indexed: root(n) comes from root0 directly, and a packet of any
	// generation ahead may open (NewIndexedKeyring).
	indexed bool
	root0   []byte
}

type generation struct {
	n       uint64
	sess    *Session
	started time.Time
}

// recvSet is the newest generation opened and the one before it.
type recvSet struct{ cur, prev *generation }

// NewKeyring starts at generation 0 from root (RootLen bytes; the Keyring
// keeps a copy). interval ≤ 0 means RekeyInterval.
func NewKeyring(root []byte, isClient bool, interval time.Duration, now time.Time) (*Keyring, error) {
	return newKeyring(root, isClient, interval, now, false)
}

// NewIndexedKeyring is NewKeyring for a root that either end can always
// derive again: generations are derived from it directly, and the first
// packet a receiver opens may be of any generation (see above).
func NewIndexedKeyring(root []byte, isClient bool, interval time.Duration, now time.Time) (*Keyring, error) {
	return newKeyring(root, isClient, interval, now, true)
}

func newKeyring(root []byte, isClient bool, interval time.Duration, now time.Time, indexed bool) (*Keyring, error) {
	if len(root) != RootLen {
		return nil, fmt.Errorf("%w: root of %d bytes, want %d", ErrKeyMaterial, len(root), RootLen)
	}
	if interval <= 0 {
		interval = RekeyInterval
	}
	k := &Keyring{isClient: isClient, interval: interval, limit: RekeyPackets, roots: map[uint64][]byte{0: append([]byte(nil), root...)}}
	if indexed {
		k.indexed, k.root0 = true, append([]byte(nil), root...)
	}
	g, err := k.generationLocked(0, now)
	if err != nil {
		return nil, err
	}
	k.send.Store(g)
	k.recv.Store(&recvSet{cur: g})
	return k, nil
}

// generationLocked derives generation n (n ≥ the oldest root held).
func (k *Keyring) generationLocked(n uint64, now time.Time) (*generation, error) {
	root, err := k.rootLocked(n)
	if err != nil {
		return nil, err
	}
	ekm, err := hkdf.Expand(sha256.New, root, "ipopd keys", ExporterLen)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyMaterial, err)
	}
	sess, err := NewSession(ekm, k.isClient)
	clear(ekm)
	if err != nil {
		return nil, err
	}
	sess.base = n << generationShift
	return &generation{n: n, sess: sess, started: now}, nil
}

// rootLocked returns root(n), deriving forward from the newest held.
func (k *Keyring) rootLocked(n uint64) ([]byte, error) {
	if r, ok := k.roots[n]; ok {
		return r, nil
	}
	if k.indexed {
		if n >= 1<<(64-generationShift) {
			return nil, fmt.Errorf("%w: generation %d", ErrKeyMaterial, n)
		}
		// Not kept: derived again when needed, so packets that claim
		// generations far ahead (forged or not) leave nothing behind.
		r, err := hkdf.Expand(sha256.New, k.root0, "ipopd generation "+strconv.FormatUint(n, 10), RootLen)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyMaterial, err)
		}
		return r, nil
	}
	var top uint64
	for g := range k.roots {
		top = max(top, g)
	}
	if n < top {
		return nil, fmt.Errorf("%w: generation %d is gone", ErrKeyMaterial, n)
	}
	r := k.roots[top]
	for g := top + 1; g <= n; g++ {
		next, err := hkdf.Expand(sha256.New, r, "ipopd next", RootLen)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyMaterial, err)
		}
		k.roots[g], r = next, next
	}
	return r, nil
}

// forgetLocked erases the roots no live generation needs.
func (k *Keyring) forgetLocked() {
	low := k.send.Load().n
	if rs := k.recv.Load(); rs.prev != nil {
		low = min(low, rs.prev.n)
	} else {
		low = min(low, rs.cur.n)
	}
	for g, r := range k.roots {
		if g < low {
			clear(r)
			delete(k.roots, g)
		}
	}
}

// Seal is Session.SealFlags with the current sending generation; it moves
// to the next one when this one has sealed its share of packets.
func (k *Keyring) Seal(dst []byte, flags byte, payload []byte) ([]byte, error) {
	g := k.send.Load()
	if g.sess.sendCtr.Load() >= k.limit {
		g = k.rotate(g, time.Now())
	}
	return g.sess.SealFlags(dst, flags, payload)
}

// RotateIfDue moves the sending keys on when the current generation is
// the interval old and has sent anything; it reports whether it did.
func (k *Keyring) RotateIfDue(now time.Time) bool {
	g := k.send.Load()
	if now.Sub(g.started) < k.interval || g.sess.sendCtr.Load() == 0 {
		return false
	}
	return k.rotate(g, now) != g
}

// rotate moves from generation g to the next, unless someone did already.
func (k *Keyring) rotate(g *generation, now time.Time) *generation {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.send.Load(); cur != g {
		return cur
	}
	next, err := k.generationLocked(g.n+1, now)
	if err != nil {
		return g // cannot happen: roots ahead are always derivable
	}
	k.send.Store(next)
	k.forgetLocked()
	return next
}

// Open authenticates pkt with the generation its counter names and
// returns the payload and the flags.
func (k *Keyring) Open(dst, pkt []byte) ([]byte, byte, error) {
	if len(pkt) < HeaderLen || !IsData(pkt) {
		return dst, 0, ErrShort
	}
	n := binary.BigEndian.Uint64(pkt[counterOff:]) >> generationShift
	rs := k.recv.Load()
	var g *generation
	switch {
	case n == rs.cur.n:
		g = rs.cur
	case rs.prev != nil && n == rs.prev.n:
		g = rs.prev
	case n > rs.cur.n && (n <= rs.cur.n+maxJump || k.indexed):
		var err error
		if g, err = k.aheadGen(n); err != nil {
			return dst, 0, ErrAuth
		}
	default:
		return dst, 0, ErrAuth // gone, or too far ahead
	}
	out, flags, err := g.sess.OpenFlags(dst, pkt)
	if err != nil {
		return dst, 0, err
	}
	if g.n > rs.cur.n {
		k.advance(g)
	}
	return out, flags, nil
}

// aheadGen returns generation n ahead of the current one, derived once
// and kept until a packet proves it (or another is asked for).
func (k *Keyring) aheadGen(n uint64) (*generation, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ahead != nil && k.ahead.n == n {
		return k.ahead, nil
	}
	g, err := k.generationLocked(n, time.Now())
	if err != nil {
		return nil, err
	}
	k.ahead = g
	return g, nil
}

// advance makes g, which just opened an authentic packet, the newest
// received generation; the current one stays for stragglers.
func (k *Keyring) advance(g *generation) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rs := k.recv.Load()
	if g.n <= rs.cur.n {
		return
	}
	k.recv.Store(&recvSet{cur: g, prev: rs.cur})
	if k.ahead == g {
		k.ahead = nil
	}
	k.forgetLocked()
}

// Generation is the sending generation in use.
func (k *Keyring) Generation() uint64 { return k.send.Load().n }

// Stats sums the counters of the generations in use.
func (k *Keyring) Stats() Stats {
	var s Stats
	seen := map[*Session]bool{}
	rs := k.recv.Load()
	for _, g := range []*generation{k.send.Load(), rs.cur, rs.prev} {
		if g == nil || seen[g.sess] {
			continue
		}
		seen[g.sess] = true
		st := g.sess.Stats()
		s.Sealed += st.Sealed
		s.Opened += st.Opened
		s.AuthFailed += st.AuthFailed
		s.Replayed += st.Replayed
		s.Short += st.Short
		s.BadType += st.BadType
	}
	return s
}
