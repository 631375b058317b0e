// Package iceserver is the one description of a TURN server that the config
// (key turn), the rendezvous's welcome (time-limited credentials it hands
// out) and ICE agent construction (nat) share. It is a plain value in the
// shape of WebRTC's RTCIceServer and imports nothing, so config and the
// signaling protocol need not import nat and pion.
package iceserver

// TURN is one TURN server with long-term credentials (static, or
// time-limited ones from nat.EphemeralCredentials). URL is
// "turn:host[:port][?transport=udp|tcp]" or "turns:host[:port]"; nat
// checks it when an agent is built, config when the file is loaded.
type TURN struct {
	URL        string `json:"url"`
	Username   string `json:"username"`
	Credential string `json:"credential"`
}
