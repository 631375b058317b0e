package signal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// FuzzReadMessage feeds arbitrary streams to the frame reader. It must
// never panic, never allocate for a length it then rejects, and whatever
// it accepts must survive re-encoding unchanged (so the server can relay
// what it read).
func FuzzReadMessage(f *testing.F) {
	for _, body := range []string{
		`{"type":"ping"}`,
		`{"type":"relay","to":"ab00000000000000000000000000000000000000000000000000000000000000","payload":{"ufrag":"x"}}`,
		`{"type":"peers","peers":[{"id":"ab00000000000000000000000000000000000000000000000000000000000000","name":"a"}]}`,
		`{"type":"welcome","stun":["stun:1.2.3.4:3478"],"turn":[{"url":"turn:1.2.3.4:3478","username":"u","credential":"p"}],"you":null}`,
	} {
		f.Add(binary.BigEndian.AppendUint32(nil, uint32(len(body))), []byte(body))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, hdr, body []byte) {
		in := append(hdr, body...)
		r := bytes.NewReader(in)
		m, err := ReadMessage(r)
		if len(in) >= headerSize && binary.BigEndian.Uint32(in) > MaxMessageSize {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("length %d accepted: %v", binary.BigEndian.Uint32(in), err)
			}
			if r.Len() != len(in)-headerSize {
				t.Fatal("read past the header of an oversized frame")
			}
			return
		}
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatalf("accepted %+v but cannot write it: %v", m, err)
		}
		again, err := ReadMessage(&buf)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(again)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// normalize maps what encoding cannot preserve to one form: the payload
// is re-encoded compactly, and omitempty turns empty lists into absent ones.
func normalize(m *Message) *Message {
	c := *m
	if len(c.Payload) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, c.Payload); err == nil {
			c.Payload = b.Bytes()
		}
	}
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	if len(c.Peers) == 0 {
		c.Peers = nil
	}
	if len(c.STUN) == 0 {
		c.STUN = nil
	}
	if len(c.TURN) == 0 {
		c.TURN = nil
	}
	return &c
}

// FuzzServerDispatch feeds the stream a verified node sends (frames of
// any type and content: relays to a connected node, to nobody, pings,
// garbage, oversized lengths) to the server's session loop, with another
// node connected. Nothing may panic or hang; the other node stays
// connected.
func FuzzServerDispatch(f *testing.F) {
	p := newPKI(f, testNetwork)
	s := NewServer(ServerConfig{Identity: p.issue(f, "rendezvous"), CA: p.ca.Cert, Network: testNetwork, IdleTimeout: time.Hour}) // the victim never pings
	victim := PeerInfo{ID: nodeid.ID{1, 2, 3}, Name: "victim"}
	vs, vc := net.Pipe()
	go io.Copy(io.Discard, vc)
	vdone := make(chan struct{})
	go func() { s.serveSession(newSession(vs, vs, victim, time.Now().Add(time.Hour))); close(vdone) }()
	defer func() { vc.Close(); <-vdone; s.Close() }()
	for deadline := time.Now().Add(5 * time.Second); names(s.Peers()) != "victim"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			f.Fatal("victim not registered")
		}
	}
	frame := func(m *Message) []byte {
		b, err := encode(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(frame(&Message{Type: TypeRelay, To: victim.ID, Payload: []byte(`{"kind":"knock","boot":1}`)}))
	f.Add(append(frame(&Message{Type: TypePing}), frame(&Message{Type: TypeRelay, To: nodeid.ID{9}, Payload: []byte(`{}`)})...))
	f.Add(append(frame(&Message{Type: TypePong}), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte{0, 0, 0, 3, '{', '}', '}'})
	attacker := PeerInfo{ID: nodeid.ID{7}, Name: "mallory"}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { s.serveSession(newSession(a, a, attacker, time.Now().Add(time.Hour))); close(done) }()
		go io.Copy(io.Discard, b)
		b.SetWriteDeadline(time.Now().Add(time.Second))
		b.Write(data)
		b.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the session loop did not end after its connection closed")
		}
		if !strings.Contains(names(s.Peers()), "victim") {
			t.Fatal("the other node lost its session")
		}
	})
}
