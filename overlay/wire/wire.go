// Package wire seals Ethernet frames into ipopd's own data packets and opens
// them again. It is pure logic: no sockets, no clocks, standard library only.
//
// A link authenticates its peer with a DTLS 1.2 handshake (pion/dtls/v2) and
// then exports a root secret (RFC 5705, RootLabel, RootLen bytes). A
// Keyring derives from it generation after generation of keys
// (keyring.go); each generation is a Session that seals outgoing frames
// with AES-256-GCM and opens incoming packets behind an anti-replay window.
// Data never travels as DTLS records: those cap throughput at a tenth of a
// plain socket (DESIGN.md, "Measured"), so ipopd frames packets itself on
// the same UDP socket that carries STUN and the DTLS handshake.
//
// # Data packet
//
//	 0      1      2                              10
//	+------+------+-------------------------------+--------------------+---------+
//	| type | flags| counter (uint64, big-endian)  | ciphertext (frame) | tag(16) |
//	| 0xD0 |  0   |                               |                    |         |
//	+------+------+-------------------------------+--------------------+---------+
//	 \______________ AAD (HeaderLen) _____________/
//
// nonce = salt (4 bytes, per direction) || counter (8 bytes, big-endian).
// Overhead is 26 bytes: a 1400-byte frame becomes a 1426-byte UDP payload.
//
// The type byte sits outside the ranges RFC 7983 gives STUN (0–3) and
// DTLS (20–63), so one byte tells the socket reader where a packet goes
// (IsData). Flags are 0 in this version; they are authenticated, and a
// packet that authenticates with flags the receiver does not know is
// refused with ErrType rather than misread.
//
// # Counters and replay
//
// The counter is explicit (not implied by order) because UDP reorders and
// loses packets. It starts at 1, is taken with one atomic add per frame, and
// never repeats under a key: Seal refuses with ErrKeyExhausted at
// CounterLimit, far below 2^64. A Keyring's sessions put the key
// generation in the counter's top 24 bits and move to new keys long
// before the low 40 run out (keyring.go). The
// receiver keeps a sliding window of WindowSize counters (RFC 6479), so
// packets reordered by up to WindowSize-1 positions are accepted once and
// duplicates or older counters are dropped. The window moves only after a
// packet authenticates, so forged packets cannot push it forward and make
// genuine ones look old.
package wire

const (
	// TypeData is the first byte of every data packet. 0xD0 is above the
	// RFC 7983 ranges in use (STUN 0–3, ZRTP 16–19, DTLS 20–63, TURN
	// channels 64–79, RTP/RTCP 128–191), so the demultiplexer never
	// confuses it with a packet that pion should see.
	TypeData byte = 0xD0

	// HeaderLen is type (1) + flags (1) + counter (8). The whole header is
	// the AES-GCM additional data, so none of it can be altered in transit.
	HeaderLen = 10
	// TagLen is the AES-GCM authentication tag, the last bytes of a packet.
	TagLen = 16
	// Overhead is what a data packet adds to the frame it carries.
	Overhead = HeaderLen + TagLen

	// RootLabel is the RFC 5705 label of a link's root secret (RootLen
	// bytes), from which its Keyring derives each generation of keys.
	RootLabel = "EXPORTER-ipopd-root-v2"
	// ExporterLen is one generation's keying material (what NewSession
	// takes): two directions × (AES-256 key + 4-byte salt):
	//
	//	ekm[0:32]  client→server key   ekm[32:36] client→server salt
	//	ekm[36:68] server→client key   ekm[68:72] server→client salt
	ExporterLen = 2 * (keyLen + saltLen)

	// CounterLimit bounds the counters Seal uses: it refuses to seal once
	// the next counter would reach it. 2^60 is unreachable at line rate
	// (decades at 10^6 packets/s), so it only guards against a wrapped or
	// corrupted counter, never against ordinary traffic. When to rekey for
	// cryptographic hygiene is the rekey policy's business, not this limit.
	CounterLimit uint64 = 1 << 60

	// WindowSize is how many counters, ending at the highest accepted one,
	// the receiver remembers. Like WireGuard's original 2048-packet window:
	// wide enough for the reordering several sealing goroutines and
	// multi-queue NICs cause, small enough to clear in a few words.
	WindowSize = 2048
)

// FlagControl in the flags byte marks a packet whose payload is an ipopd
// control message between the two nodes of a link (multicast membership,
// ...), not an Ethernet frame for the TAP.
const FlagControl byte = 0x01

// FlagRouted marks a packet whose payload starts with a route header
// (topology.Route): it travels through the ring to a node the sender has
// no direct link to, and the header says whether a frame or a control
// message follows.
const FlagRouted byte = 0x02

// FlagProbe marks a probe of the link (dataplane's fast liveness): empty,
// or ProbeLen bytes, a kind (ProbeAsk, ProbeAnswer) and a sequence number.
// An empty probe or a ProbeAsk wants an answer at once: a keepalive for
// the empty one, a ProbeAnswer with the same number for the other, from
// which the sender learns the link's loss and round-trip time.
const FlagProbe byte = 0x04

// Probe payloads: kind (1 byte), sequence number (4 bytes, big endian).
const (
	ProbeLen    = 5
	ProbeAsk    = 1
	ProbeAnswer = 2
)

// FlagTree marks a packet whose payload is a multicast frame on a
// group's distribution tree (a tree header and the frame signed by its
// origin: dataplane's tree.go), passed from tree node to tree node; it
// is also the inner flag of such a packet sealed end to end, between
// tree neighbours with no link.
const FlagTree byte = 0x08

// knownFlags are the flags this version understands.
const knownFlags = FlagControl | FlagRouted | FlagProbe | FlagTree

const (
	flagsOff   = 1
	counterOff = 2
	keyLen     = 32 // AES-256
	saltLen    = 4
	nonceLen   = saltLen + 8 // the GCM standard nonce size
)

// IsData reports whether pkt is an ipopd data packet by its first byte, the
// RFC 7983 way. It does not look further; Open does the checking.
func IsData(pkt []byte) bool {
	return len(pkt) > 0 && pkt[0] == TypeData
}
