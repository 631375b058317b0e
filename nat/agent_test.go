package nat

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/stun"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// Two nodes on loopback connect with ICE over their shared sockets; data
// sent with Socket.WriteTo to the selected remote address reaches the
// peer's Handler (it never passes through pion), and STUN never does.
func TestAgentsConnectHost(t *testing.T) {
	checkLeaks(t)
	ska, skb := listen(t, loopback()), listen(t, loopback())
	gotA, gotB := collect(t, ska), collect(t, skb)
	a, b := newAgent(t, ska, loopback(), nil), newAgent(t, skb, loopback(), nil)
	connected := make(chan struct{})
	if err := a.OnConnectionStateChange(func(s ice.ConnectionState) {
		if s == ice.ConnectionStateConnected {
			close(connected)
		}
	}); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("a never reported ConnectionStateConnected")
	}
	pa, err := SelectedPath(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := SelectedPath(b)
	if err != nil {
		t.Fatal(err)
	}
	if pa.LocalType != ice.CandidateTypeHost || pa.RemoteType != ice.CandidateTypeHost || !pa.Direct {
		t.Errorf("a's path %+v, want host-host direct", pa)
	}
	if pa.Remote != sockAddr(skb) || pb.Remote != sockAddr(ska) {
		t.Errorf("paths %v / %v, want the sockets %v / %v", pa.Remote, pb.Remote, sockAddr(skb), sockAddr(ska))
	}

	// a → b through the sockets only.
	msg := []byte{0x80, 'd', 'a', 't', 'a'}
	if err := ska.WriteTo(msg, pa.Remote); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, gotB, msg, pb.Remote)
	// b → a as a batch, to check the other direction and the batch path.
	if n, err := skb.WriteBatch([]Packet{{Data: []byte{0x81, 1}, Addr: pb.Remote}, {Data: []byte{0x81, 2}, Addr: pb.Remote}}); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	expectPacket(t, gotA, []byte{0x81, 1}, pa.Remote)
	expectPacket(t, gotA, []byte{0x81, 2}, pa.Remote)

	// A STUN message to the peer goes to pion, not to its Handler.
	stunIn := skb.Stats().STUNIn
	if err := ska.WriteTo(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication)).Raw, pa.Remote); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return skb.Stats().STUNIn > stunIn })
	select {
	case p := <-gotB:
		t.Fatalf("Handler got %x, a STUN message", p.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

func expectPacket(t *testing.T, ch <-chan Packet, data []byte, from netip.AddrPort) {
	t.Helper()
	for deadline := time.After(5 * time.Second); ; {
		select {
		case p := <-ch:
			if bytes.Equal(p.Data, data) {
				if p.Addr != from {
					t.Errorf("packet %x from %v, want from %v", data, p.Addr, from)
				}
				return
			}
			t.Errorf("unexpected packet %x from %v", p.Data, p.Addr)
		case <-deadline:
			t.Fatalf("packet %x did not arrive", data)
		}
	}
}

// The knobs NewAgent must refuse.
func TestNewAgentErrors(t *testing.T) {
	sk := listen(t, loopback())
	for _, tc := range []struct {
		name  string
		st    Settings
		extra []iceserver.TURN
		want  error
	}{
		{"relay only without TURN", Settings{RelayOnly: true, STUN: []string{"stun:127.0.0.1:3478"}}, nil, ErrNoTURN},
		{"TURN URL in stun list", Settings{STUN: []string{"turn:127.0.0.1"}}, nil, ErrBadURL},
		{"stuns URL in stun list", Settings{STUN: []string{"stuns:127.0.0.1"}}, nil, ErrBadURL},
		{"STUN URL in turn list", Settings{}, []iceserver.TURN{{URL: "stun:127.0.0.1", Username: "u", Credential: "p"}}, ErrBadURL},
		{"TURN without credential", Settings{TURN: []iceserver.TURN{{URL: "turn:127.0.0.1", Username: "u"}}}, nil, ErrNoCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := sk.NewAgent(tc.st, tc.extra, nil)
			if a != nil {
				_ = a.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewAgent = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSelectedPathBeforeConnect(t *testing.T) {
	sk := listen(t, loopback())
	a := newAgent(t, sk, loopback(), nil)
	if _, err := SelectedPath(a); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("SelectedPath = %v, want ErrNotConnected", err)
	}
}

// Excluding every interface but lo by name (as ipopd excludes its TAP)
// keeps their addresses out of the host candidates that the UDP mux on
// 0.0.0.0 offers; no InterfaceFilter alone would.
func TestExcludeReachesMux(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	st := Settings{IncludeLoopback: true}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 {
			st.Exclude = append(st.Exclude, ifc.Name)
		}
	}
	sk := listen(t, st)
	cands := gather(t, newAgent(t, sk, st, nil))
	if len(cands) != 1 || cands[0].Address() != "127.0.0.1" || cands[0].Port() != sk.LocalAddr().Port {
		t.Fatalf("candidates %v, want only host 127.0.0.1:%d", cands, sk.LocalAddr().Port)
	}
}
