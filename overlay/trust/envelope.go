package trust

// The signed envelope of a control message.
//
//	 0  version   1  envVersion (0x01)
//	 1  flags     1  bit 0: a certificate follows the header; other bits 0
//	 2  boot      8  the origin's run: UnixNano at its start
//	10  counter   8  per run, from 1
//	18  time      8  unix milliseconds when signed
//	26  [cert len 2, cert DER]        when flag 0
//	    message   …  kind byte, then the message
//	    signature …  ECDSA P-256 (ASN.1) over sigContext || origin || dst || all bytes before it
//	    sig len   1
//
// origin is the node that signed (the link peer for direct messages, the
// route header's source for routed ones) and dst the node it is for (zero:
// every node, a broadcast). Both are signed but not carried: they come
// from where the message came from, so a route header naming another
// source, or a unicast replayed to a third node, fails.
//
// Replay: per origin, the counter of its current run is checked against
// a sliding window (wire.ReplayWindow); another run (a restart) counts
// only with a timestamp newer than any seen from the origin, and every
// message must be within Freshness of the receiver's clock (what a node
// evicted from the Directory could otherwise replay is bounded by that).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
)

const (
	envVersion   = 0x01
	envHeaderLen = 26
	envFlagCert  = 1 << 0
	maxSigLen    = 72 // ASN.1 ECDSA P-256: 70-72 bytes
	maxCertLen   = 4096
	sigContext   = "ipopd control message v1\x00"

	// Freshness is how far a message's timestamp may be from the
	// receiver's clock. Certificates already need clocks within minutes
	// (they are backdated 5 minutes on issue).
	Freshness = 15 * time.Minute
	// Overhead is what an envelope adds to a message, without the
	// certificate.
	Overhead = envHeaderLen + maxSigLen + 1
)

// Signer seals this node's control messages. It is safe for concurrent
// use.
type Signer struct {
	self nodeid.ID
	key  crypto.Signer
	cert []byte
	boot uint64
	ctr  atomic.Uint64
	now  func() time.Time
}

// NewSigner signs as id; now nil means time.Now.
func NewSigner(id *identity.Identity, now func() time.Time) *Signer {
	if now == nil {
		now = time.Now
	}
	return &Signer{self: id.ID, key: id.Key, cert: id.Cert.Raw, boot: uint64(now().UnixNano()), now: now}
}

// Seal returns message (kind byte first) in an envelope signed for dst
// (zero: a broadcast), with this node's certificate when withCert.
func (s *Signer) Seal(dst nodeid.ID, message []byte, withCert bool) ([]byte, error) {
	n := envHeaderLen + len(message) + maxSigLen + 1
	if withCert {
		n += 2 + len(s.cert)
	}
	b := make([]byte, envHeaderLen, n)
	b[0] = envVersion
	binary.BigEndian.PutUint64(b[2:], s.boot)
	binary.BigEndian.PutUint64(b[10:], s.ctr.Add(1))
	binary.BigEndian.PutUint64(b[18:], uint64(s.now().UnixMilli()))
	if withCert {
		b[1] |= envFlagCert
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.cert)))
		b = append(b, s.cert...)
	}
	b = append(b, message...)
	digest := signedDigest(s.self, dst, b)
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("trust: signing: %w", err)
	}
	b = append(b, sig...)
	return append(b, byte(len(sig))), nil
}

func signedDigest(origin, dst nodeid.ID, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(sigContext))
	h.Write(origin[:])
	h.Write(dst[:])
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// parsed is an envelope split into its parts (aliasing the input).
type parsed struct {
	boot, counter uint64
	time          int64
	cert          []byte
	message       []byte
	body          []byte // everything signed after the context, origin and dst
	sig           []byte
}

func parse(b []byte) (parsed, error) {
	var p parsed
	if len(b) < envHeaderLen+2 {
		return p, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != envVersion || b[1]&^envFlagCert != 0 {
		return p, fmt.Errorf("%w: version %#x flags %#x", ErrMalformed, b[0], b[1])
	}
	sl := int(b[len(b)-1])
	if sl == 0 || sl > maxSigLen || len(b) < envHeaderLen+1+sl {
		return p, fmt.Errorf("%w: signature length %d", ErrMalformed, sl)
	}
	p.body, p.sig = b[:len(b)-1-sl], b[len(b)-1-sl:len(b)-1]
	p.boot = binary.BigEndian.Uint64(b[2:])
	p.counter = binary.BigEndian.Uint64(b[10:])
	p.time = int64(binary.BigEndian.Uint64(b[18:]))
	rest := p.body[envHeaderLen:]
	if b[1]&envFlagCert != 0 {
		if len(rest) < 2 {
			return p, fmt.Errorf("%w: no certificate length", ErrMalformed)
		}
		cl := int(binary.BigEndian.Uint16(rest))
		if cl == 0 || cl > maxCertLen || len(rest) < 2+cl {
			return p, fmt.Errorf("%w: certificate length %d", ErrMalformed, cl)
		}
		p.cert, rest = rest[2:2+cl], rest[2+cl:]
	}
	if len(rest) == 0 {
		return p, fmt.Errorf("%w: no message", ErrMalformed)
	}
	if p.counter == 0 {
		return p, fmt.Errorf("%w: counter 0", ErrMalformed)
	}
	p.message = rest
	return p, nil
}

// Open checks an envelope that came from origin for dst (this node, or
// zero for a message that came as a broadcast) and returns the message it
// carries (aliasing env) with the origin's entry. Errors wrap
// ErrMalformed, ErrUnknownOrigin, ErrCert, ErrBadSignature or ErrReplay. A
// certificate in the envelope is learned (if it verifies and is origin's)
// even when the message is then refused.
func (d *Directory) Open(origin, dst nodeid.ID, env []byte) ([]byte, *Entry, error) {
	return d.open(origin, dst, env, false)
}

// OpenStream is Open for a stream of many messages signed for one dst of
// their own (tree frames): their counters go through a replay window of
// their own, so that thousands of them a second do not push the window
// of the origin's other messages (control, broadcasts) past one that is
// merely late. The signature binds dst, so no envelope passes both ways.
func (d *Directory) OpenStream(origin, dst nodeid.ID, env []byte) ([]byte, *Entry, error) {
	return d.open(origin, dst, env, true)
}

func (d *Directory) open(origin, dst nodeid.ID, env []byte, stream bool) ([]byte, *Entry, error) {
	p, err := parse(env)
	if err != nil {
		return nil, nil, err
	}
	e := d.Get(origin)
	if e == nil && p.cert != nil {
		if e, err = d.Learn(p.cert); err != nil {
			return nil, nil, err
		}
		if e.Peer.ID != origin {
			return nil, nil, fmt.Errorf("%w: certificate of %s in a message from %s", ErrCert, e.Peer, origin.Short())
		}
	}
	if e == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownOrigin, origin.Short())
	}
	// A unicast for another node (replayed to us) fails here like a
	// forgery: dst is part of what was signed.
	digest := signedDigest(origin, dst, p.body)
	if !ecdsa.VerifyASN1(e.pub, digest[:], p.sig) {
		return nil, e, fmt.Errorf("%w: from %s", ErrBadSignature, e.Peer)
	}
	if err := d.accept(e, p, stream); err != nil {
		return nil, e, err
	}
	return p.message, e, nil
}

// accept runs the replay checks of an authentic message and records it.
func (d *Directory) accept(e *Entry, p parsed, stream bool) error {
	now := d.now()
	if t := time.UnixMilli(p.time); t.Before(now.Add(-Freshness)) || t.After(now.Add(Freshness)) {
		return fmt.Errorf("%w: from %s, signed at %s (clock here %s)", ErrReplay, e.Peer, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p.boot != e.boot {
		if e.boot != 0 && p.time <= e.lastTime {
			return fmt.Errorf("%w: from %s, an older run", ErrReplay, e.Peer)
		}
		e.boot, e.window, e.stream = p.boot, wire.ReplayWindow{}, wire.ReplayWindow{}
	}
	w := &e.window
	if stream {
		w = &e.stream
	}
	if !w.Accept(p.counter) {
		return fmt.Errorf("%w: from %s, counter %d seen", ErrReplay, e.Peer, p.counter)
	}
	e.lastTime = max(e.lastTime, p.time)
	return nil
}

// Peek returns the message an envelope carries, unchecked: for the
// sender's own choices (how to send it), never to act on.
func Peek(env []byte) ([]byte, bool) {
	p, err := parse(env)
	if err != nil {
		return nil, false
	}
	return p.message, true
}
