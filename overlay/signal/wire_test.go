package signal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/ipopd/ipopd/nat/iceserver"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

func TestMessageRoundTrip(t *testing.T) {
	a, b := nodeid.ID{1, 2, 3}, nodeid.ID{0xff}
	for _, m := range []*Message{
		{Type: TypePing},
		{Type: TypeWelcome, You: &PeerInfo{ID: a, Name: "alpha"}, STUN: []string{"stun:198.18.0.10:3478"},
			TURN: []iceserver.TURN{{URL: "turn:198.18.0.10:3478?transport=udp", Username: "1700000000:alpha", Credential: "x"}}},
		{Type: TypePeers, Peers: []PeerInfo{{ID: a, Name: "alpha"}, {ID: b, Name: "beta"}}},
		{Type: TypeRelay, From: a, To: b, Payload: []byte(`{"ufrag":"u","candidates":["c1"]}`)},
		{Type: TypeError, To: b, Error: "peer not connected"},
	} {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if n := binary.BigEndian.Uint32(buf.Bytes()); int(n) != buf.Len()-headerSize {
			t.Errorf("%s: length prefix %d, body %d bytes", m.Type, n, buf.Len()-headerSize)
		}
		got, err := ReadMessage(&buf)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

// The documented encoding: zero IDs and empty fields are left out, IDs are
// hex text.
func TestMessageJSON(t *testing.T) {
	frame, err := encode(&Message{Type: TypeRelay, To: nodeid.ID{0xab}, Payload: []byte(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"relay","to":"ab00000000000000000000000000000000000000000000000000000000000000","payload":1}`
	if got := string(frame[headerSize:]); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestReadMessageErrors(t *testing.T) {
	hdr := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	frame := func(body string) []byte { return append(hdr(uint32(len(body))), body...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"nothing", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"short body", append(hdr(10), `{"type"`...), io.ErrUnexpectedEOF},
		{"length only", hdr(10), io.ErrUnexpectedEOF},
		{"zero length", hdr(0), ErrMalformed},
		{"over the limit", hdr(MaxMessageSize + 1), ErrTooLarge},
		{"not an object", frame("[]"), ErrMalformed},
		{"trailing garbage", frame(`{"type":"ping"} x`), ErrMalformed},
		{"empty type", frame(`{"type":""}`), ErrMalformed},
		{"short id", frame(`{"type":"relay","to":"ab"}`), ErrMalformed},
	} {
		_, err := ReadMessage(bytes.NewReader(tc.in))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestWriteMessageRefuses(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMessage(&buf, &Message{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("no type: %v", err)
	}
	if err := WriteMessage(&buf, &Message{Type: TypeRelay, Payload: []byte("{")}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad payload: %v", err)
	}
	big := bytes.Repeat([]byte("1"), MaxMessageSize)
	if err := WriteMessage(&buf, &Message{Type: TypeRelay, Payload: big}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big payload: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("refused messages wrote %d bytes", buf.Len())
	}
}
