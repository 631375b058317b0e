// Package signal is the rendezvous: presence and relayed link signaling
// between the nodes of one network, before (and besides) the overlay itself.
//
// The Server runs inside ipop-rendezvous; every node runs one Client. Both
// sides speak mutual TLS 1.3 over TCP and present certificates issued by
// the network CA. Each verifies the other with identity.VerifyRaw: no host
// names are checked, the CA and the network name decide. The server knows a
// node only by the node ID of its verified certificate, so the From of every
// relayed message is the server's word, never the sender's. Any certificate
// of the network can act as a server; a node trusts the rendezvous no more
// than it trusts any other node, and link set-up is authenticated again
// end to end by DTLS.
//
// After the handshake the server sends one "welcome" (STUN and TURN for this
// node, and the node as the server saw it), then a "peers" message with the
// full presence list whenever it changes. "relay" messages carry an opaque
// JSON payload from node to node by ID. The server pings every 15 s and drops
// a node it has not heard from for 45 s; the client answers pings and
// reconnects by itself with exponential backoff. See wire.go for the framing.
package signal
