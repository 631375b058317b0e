package trust

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
)

// DefaultMaxNodes bounds a Directory: certificates only come from the
// network's CA, so this is the largest network a node keeps state for
// without evicting (least recently used first).
const DefaultMaxNodes = 10_000

// Directory holds the verified certificates of the nodes this node has
// heard of (over links, or carried in signed messages), with each
// origin's replay state. It is bounded (LRU) and safe for concurrent use.
type Directory struct {
	ca      *x509.Certificate
	network string
	max     int
	now     func() time.Time

	mu      sync.Mutex // guards the fields below
	byID    map[nodeid.ID]*Entry
	byHash  map[[32]byte]*Entry // by SHA-256 of the certificate's DER: skips re-verifying
	lru     *list.List          // of *Entry, most recently used in front
	revoked map[nodeid.ID]bool

	stats DirectoryStats
}

// DirectoryStats are cumulative counters.
type DirectoryStats struct {
	Learned, Evicted, Refused, Revoked atomic.Uint64
}

// Entry is one known node: its verified certificate and the replay state
// of the messages it signs. Peer and the key never change (a renewed
// certificate makes a new Entry); the replay state has its own lock.
type Entry struct {
	Peer *identity.Peer
	pub  *ecdsa.PublicKey
	hash [32]byte
	elem *list.Element

	mu       sync.Mutex // guards the replay state
	boot     uint64
	lastTime int64 // newest timestamp accepted, unix ms
	window   wire.ReplayWindow
	stream   wire.ReplayWindow // OpenStream's
}

// NewDirectory returns an empty directory that accepts certificates of
// ca for network; max ≤ 0 means DefaultMaxNodes; now nil means time.Now.
func NewDirectory(ca *x509.Certificate, network string, max int, now func() time.Time) *Directory {
	if max <= 0 {
		max = DefaultMaxNodes
	}
	if now == nil {
		now = time.Now
	}
	return &Directory{ca: ca, network: network, max: max, now: now,
		byID: map[nodeid.ID]*Entry{}, byHash: map[[32]byte]*Entry{}, lru: list.New(), revoked: map[nodeid.ID]bool{}}
}

// Stats returns the counters.
func (d *Directory) Stats() *DirectoryStats { return &d.stats }

// Len is the number of nodes known.
func (d *Directory) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byID)
}

// Get returns the entry of node id, nil if it is unknown, its certificate
// has expired or it is revoked.
func (d *Directory) Get(id nodeid.ID) *Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.byID[id]
	if e == nil {
		return nil
	}
	if d.revoked[id] || d.now().After(e.Peer.NotAfter) {
		d.removeLocked(e)
		return nil
	}
	d.lru.MoveToFront(e.elem)
	return e
}

// Peer returns the verified certificate of node id, or nil.
func (d *Directory) Peer(id nodeid.ID) *identity.Peer {
	if e := d.Get(id); e != nil {
		return e.Peer
	}
	return nil
}

// Add records a peer whose certificate was verified elsewhere (the DTLS
// handshake of a link).
func (d *Directory) Add(p *identity.Peer) (*Entry, error) {
	pub, ok := p.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		d.stats.Refused.Add(1)
		return nil, fmt.Errorf("%w: %s: key is %T, not ECDSA", ErrCert, p, p.Cert.PublicKey)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.revoked[p.ID] {
		d.stats.Revoked.Add(1)
		return nil, fmt.Errorf("%w: %s is revoked", ErrCert, p)
	}
	return d.insertLocked(p, pub, sha256.Sum256(p.Cert.Raw)), nil
}

// Learn verifies a certificate (DER) against the network CA at now and
// records it. A certificate seen before is not verified again.
func (d *Directory) Learn(der []byte) (*Entry, error) {
	h := sha256.Sum256(der)
	d.mu.Lock()
	if e := d.byHash[h]; e != nil && !d.revoked[e.Peer.ID] && !d.now().After(e.Peer.NotAfter) {
		d.lru.MoveToFront(e.elem)
		d.mu.Unlock()
		return e, nil
	}
	d.mu.Unlock()
	p, err := identity.VerifyRaw([][]byte{der}, d.ca, d.network, d.now())
	if err != nil {
		d.stats.Refused.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrCert, err)
	}
	return d.Add(p)
}

func (d *Directory) insertLocked(p *identity.Peer, pub *ecdsa.PublicKey, h [32]byte) *Entry {
	if old := d.byID[p.ID]; old != nil {
		if old.hash == h {
			d.lru.MoveToFront(old.elem)
			return old
		}
		// The same key in another certificate (renewed): a new entry,
		// since entries are read without the lock, with the replay state.
		e := &Entry{Peer: p, pub: pub, hash: h}
		old.mu.Lock()
		e.boot, e.lastTime, e.window, e.stream = old.boot, old.lastTime, old.window, old.stream
		old.mu.Unlock()
		d.removeLocked(old)
		e.elem = d.lru.PushFront(e)
		d.byID[p.ID], d.byHash[h] = e, e
		return e
	}
	for len(d.byID) >= d.max {
		d.removeLocked(d.lru.Back().Value.(*Entry))
		d.stats.Evicted.Add(1)
	}
	e := &Entry{Peer: p, pub: pub, hash: h}
	e.elem = d.lru.PushFront(e)
	d.byID[p.ID], d.byHash[h] = e, e
	d.stats.Learned.Add(1)
	return e
}

func (d *Directory) removeLocked(e *Entry) {
	d.lru.Remove(e.elem)
	delete(d.byID, e.Peer.ID)
	delete(d.byHash, e.hash)
}

// Revoke marks node IDs revoked: their entries go, and their certificates
// are refused from now on.
func (d *Directory) Revoke(ids ...nodeid.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		d.revoked[id] = true
		if e := d.byID[id]; e != nil {
			d.removeLocked(e)
		}
	}
}

// Revoked reports whether id is revoked.
func (d *Directory) Revoked(id nodeid.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.revoked[id]
}
