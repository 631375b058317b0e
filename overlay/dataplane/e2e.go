package dataplane

// End-to-end sealing of routed unicast. A frame or control message for a
// node this node has no link to travels through others; hop by hop each
// link seals it, but the nodes in between would see it in the clear. So
// the payload is sealed again, between origin and destination, and the
// route header says so (Route.Sealed):
//
//	route header | boot (8) | wire packet: type, flags, counter, ciphertext, tag
//
// Keys come from the two nodes' certificate keys (static ECDH, P-256) and
// a random number the sender draws for each sending keyring it makes
// (boot, carried in every packet): root = HKDF(ECDH, "ipopd e2e v1",
// sender ‖ receiver ‖ boot), so neither a restart nor keys made again
// toward a node (after they went idle or were evicted) ever reuse a
// nonce. Each root drives a wire.Keyring (rotating like a link's
// keys: every rekey interval, or 2^32 packets) and its replay window. The
// flags inside (FlagControl) say what the payload is; the nodes in
// between can only drop it. A node whose certificate this node has not
// seen yet is asked for it (a hello); frames toward it wait meanwhile
// (held, bounded).

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
)

const (
	e2eBootLen  = 8
	e2eOverhead = e2eBootLen + wire.Overhead
	// Bounds on end-to-end state: keys toward and from this many nodes.
	maxE2ESend = 4096
	maxE2ERecv = 4096
	// e2eIdle is how long unused end-to-end keys are kept.
	e2eIdle = 10 * time.Minute
)

// errNoCert: the other end's certificate is not known yet.
var errNoCert = errors.New("dataplane: certificate of the other end not known")

type e2eRecvKey struct {
	from nodeid.ID
	boot uint64
}

type e2eKeys struct {
	keys *wire.Keyring
	used time.Time
	// boot names the sending keys' root: random for each keyring made,
	// so keys made again toward a node (after they went idle, or were
	// evicted) never start a nonce sequence already used.
	boot uint64
}

// e2e holds this node's end-to-end keys.
type e2e struct {
	self     nodeid.ID
	priv     *ecdh.PrivateKey // nil: no key to do it with (tests without identity)
	interval time.Duration

	mu     sync.Mutex // guards the maps
	send   map[nodeid.ID]*e2eKeys
	recv   map[e2eRecvKey]*e2eKeys
	shared map[nodeid.ID]e2eShared
}

type e2eShared struct {
	pub    *ecdsa.PublicKey
	secret []byte
}

func newE2E(self nodeid.ID, id *identity.Identity, interval time.Duration) *e2e {
	e := &e2e{self: self, interval: interval,
		send: map[nodeid.ID]*e2eKeys{}, recv: map[e2eRecvKey]*e2eKeys{}, shared: map[nodeid.ID]e2eShared{}}
	if id != nil {
		if k, ok := id.Key.(*ecdsa.PrivateKey); ok {
			e.priv, _ = k.ECDH()
		}
	}
	return e
}

// root derives the root of the keys from sender (at its run boot) to
// receiver, given the other end's certificate.
func (e *e2e) root(other *identity.Peer, sender, receiver nodeid.ID, boot uint64) ([]byte, error) {
	if e.priv == nil {
		return nil, errNoCert
	}
	pub, ok := other.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("dataplane: %s has a %T key", other, other.Cert.PublicKey)
	}
	otherID := sender
	if sender == e.self {
		otherID = receiver
	}
	shared, err := e.sharedWith(otherID, pub)
	if err != nil {
		return nil, err
	}
	info := make([]byte, 0, 32+32+8)
	info = append(append(info, sender[:]...), receiver[:]...)
	info = binary.BigEndian.AppendUint64(info, boot)
	return hkdf.Key(sha256.New, shared, []byte("ipopd e2e v1"), string(info), wire.RootLen)
}

// sharedWith is the static ECDH secret with node id (key pub), computed
// once per node and key: a packet with a made-up boot costs an HKDF, not
// an ECDH. e.mu is held.
func (e *e2e) sharedWith(id nodeid.ID, pub *ecdsa.PublicKey) ([]byte, error) {
	if s, ok := e.shared[id]; ok && s.pub.Equal(pub) {
		return s.secret, nil
	}
	epub, err := pub.ECDH()
	if err != nil {
		return nil, err
	}
	secret, err := e.priv.ECDH(epub)
	if err != nil {
		return nil, err
	}
	if len(e.shared) >= maxE2ESend+maxE2ERecv {
		for k := range e.shared { // any one: computed again if needed
			delete(e.shared, k)
			break
		}
	}
	e.shared[id] = e2eShared{pub: pub, secret: secret}
	return secret, nil
}

// sealer returns the sending keys toward to (cert: its certificate) and
// the boot their root is derived with.
func (e *e2e) sealer(to nodeid.ID, cert *identity.Peer, now time.Time) (*wire.Keyring, uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if k := e.send[to]; k != nil {
		k.used = now
		return k.keys, k.boot, nil
	}
	boot := randomBoot()
	root, err := e.root(cert, e.self, to, boot)
	if err != nil {
		return nil, 0, err
	}
	keys, err := wire.NewIndexedKeyring(root, true, e.interval, now)
	clear(root)
	if err != nil {
		return nil, 0, err
	}
	if len(e.send) >= maxE2ESend {
		evictOldest(e.send)
	}
	e.send[to] = &e2eKeys{keys: keys, used: now, boot: boot}
	return keys, boot, nil
}

func randomBoot() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}

// opener returns the receiving keys from node from at its run boot, and
// whether they are new: not kept until a packet opens under them (keep),
// so packets with made-up boots leave nothing behind and cannot push out
// real keys.
func (e *e2e) opener(from nodeid.ID, boot uint64, cert *identity.Peer, now time.Time) (*wire.Keyring, bool, error) {
	k := e2eRecvKey{from, boot}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recv[k]; r != nil {
		return r.keys, false, nil // used is refreshed once a packet opens (keep)
	}
	root, err := e.root(cert, from, e.self, boot)
	if err != nil {
		return nil, false, err
	}
	// Indexed: the sender may have been on its keys for hours when this
	// node (re)starts; its first packet opens whatever its generation.
	keys, err := wire.NewIndexedKeyring(root, false, e.interval, now)
	clear(root)
	if err != nil {
		return nil, false, err
	}
	return keys, true, nil
}

// keep stores keys that opened a packet from node from at its run boot.
func (e *e2e) keep(from nodeid.ID, boot uint64, keys *wire.Keyring, now time.Time) {
	k := e2eRecvKey{from, boot}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recv[k]; r != nil {
		r.used = now // kept: in use
		return
	}
	if len(e.recv) >= maxE2ERecv {
		evictOldest(e.recv)
	}
	e.recv[k] = &e2eKeys{keys: keys, used: now}
}

// maintain rotates due sending keys and forgets idle ones.
func (e *e2e) maintain(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, k := range e.send {
		if now.Sub(k.used) > e2eIdle {
			delete(e.send, id)
			continue
		}
		k.keys.RotateIfDue(now)
	}
	for id, k := range e.recv {
		if now.Sub(k.used) > e2eIdle {
			delete(e.recv, id)
		}
	}
}

func evictOldest[K comparable](m map[K]*e2eKeys) {
	var oldest K
	var t time.Time
	first := true
	for k, v := range m {
		if first || v.used.Before(t) {
			oldest, t, first = k, v.used, false
		}
	}
	delete(m, oldest)
}

// sealE2E appends payload sealed for node to to dst: boot, then a wire
// packet with flags (FlagControl for a control message).
func (p *Plane) sealE2E(dst []byte, to nodeid.ID, cert *identity.Peer, flags byte, payload []byte) ([]byte, error) {
	keys, boot, err := p.e2e.sealer(to, cert, time.Now())
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint64(dst, boot)
	return keys.Seal(dst, flags, payload)
}

// openE2E opens an end-to-end sealed payload from node from into dst and
// returns the plaintext and its flags.
func (p *Plane) openE2E(dst []byte, from nodeid.ID, cert *identity.Peer, sealed []byte) ([]byte, byte, error) {
	if len(sealed) < e2eOverhead {
		return dst, 0, wire.ErrShort
	}
	boot := binary.BigEndian.Uint64(sealed)
	now := time.Now()
	keys, _, err := p.e2e.opener(from, boot, cert, now)
	if err != nil {
		return dst, 0, err
	}
	out, flags, err := keys.Open(dst, sealed[e2eBootLen:])
	if err == nil {
		p.e2e.keep(from, boot, keys, now) // new keys kept, known ones marked used
	}
	return out, flags, err
}

// MaintainE2E rotates end-to-end keys that are due and forgets idle ones;
// link control calls it on its ticks.
func (p *Plane) MaintainE2E(now time.Time) { p.e2e.maintain(now) }
