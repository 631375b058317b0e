package signal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
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
