package overlay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v2/vnet"

	"github.com/ipopd/ipopd/nat"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/trust"
	"github.com/ipopd/ipopd/tap/taptest"
)

// nowhere is a rendezvous that is never connected.
type nowhere struct{}

func (nowhere) Send(nodeid.ID, []byte) error { return nil }
func (nowhere) Connected() bool              { return false }

// FuzzLinkSignaling drives link control's signaling state machine with
// what an authenticated but hostile member may send, in any order:
// offers, answers, candidates (any address: the agents run on pion's
// virtual network, so no check leaves the process), knocks and byes, from
// a node below this one on the ring and one above, for the session in
// use or another. Input: messages separated by newlines, each a byte
// (bit 0: which peer; bit 1: through the overlay) and the JSON message.
// Nothing may panic or hang; links stay within their bounds.
func FuzzLinkSignaling(f *testing.F) {
	m, lower, higher := signalingManager(f)

	f.Add([]byte("\x00" + `{"kind":"offer","session":5,"boot":7,"ufrag":"abcdefgh","pwd":"abcdefghijklmnopqrstuvwxyz"}` + "\n" +
		"\x00" + `{"kind":"cand","session":5,"cand":"candidate:1 1 udp 2130706431 198.18.0.12 4000 typ host"}` + "\n" +
		"\x00" + `{"kind":"cand","session":5,"cand":"candidate:2 1 udp 2130706431 198.18.0.11 4000 typ host"}` + "\n" +
		"\x00" + `{"kind":"bye","session":5}`))
	f.Add([]byte("\x01" + `{"kind":"knock","boot":3}` + "\n" +
		"\x01" + `{"kind":"answer","session":1,"boot":3,"ufrag":"abcdefgh","pwd":"abcdefghijklmnopqrstuvwxyz"}` + "\n" +
		"\x03" + `{"kind":"bye","session":1,"why":"unneeded"}`))
	f.Add([]byte("\x02" + `{"kind":"offer","session":9,"boot":1,"ufrag":"abcd","pwd":"pppppppppppppppppppppp"}` + "\n" +
		"\x02" + `{"kind":"offer","session":10,"boot":1,"ufrag":"abcd","pwd":"pppppppppppppppppppppp"}` + "\n" +
		"\x00" + `{"kind":"cand","session":10,"cand":"candidate:1 1 udp 2130706431 224.0.0.1 4000 typ host"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := bytes.Split(data, []byte{'\n'})
		for _, msg := range msgs[:min(len(msgs), 12)] {
			if len(msg) == 0 {
				continue
			}
			from := lower
			if msg[0]&1 != 0 {
				from = higher
			}
			m.onSignal(from, msg[1:], msg[0]&2 != 0)
		}
		var links, active int
		m.call(func() {
			links, active = len(m.links), m.activeLinks()
			for _, l := range m.links {
				if l.remotes > maxRemoteCandidates {
					t.Errorf("%s took %d candidates", l, l.remotes)
				}
				m.down(l, "fuzz: next input")
			}
			clear(m.links)
			clear(m.retries)
		})
		if links > 2 || active > 2 {
			t.Errorf("%d links (%d active) with two peers", links, active)
		}
	})
}

// signalingManager runs a Manager on pion's virtual network (so no ICE
// check leaves the process) until tb ends, and returns it with two node
// IDs: one below its own in ID order (that peer offers) and one above
// (that peer knocks).
func signalingManager(tb testing.TB) (m *Manager, lower, higher nodeid.ID) {
	lan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.18.0.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		tb.Fatal(err)
	}
	vn, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.18.0.11"}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := lan.AddNet(vn); err != nil {
		tb.Fatal(err)
	}
	if err := lan.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lan.Stop() })
	log := slog.New(slog.DiscardHandler)
	st := nat.Settings{Interfaces: []string{"eth0"}}
	sock, err := nat.Listen(st, vn, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sock.Close() })
	ca, err := identity.NewCA("test", time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	crt, key, err := ca.Issue("self", nil, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	os.WriteFile(filepath.Join(dir, "self.crt"), crt, 0o644)
	os.WriteFile(filepath.Join(dir, "self.key"), key, 0o600)
	id, err := identity.LoadNode(filepath.Join(dir, "self.crt"), filepath.Join(dir, "self.key"))
	if err != nil {
		tb.Fatal(err)
	}
	dev := taptest.New("fz0", 1400, nil, 16)
	tb.Cleanup(func() { dev.Close() })
	dp := dataplane.New(dataplane.Config{Self: id.ID, MTU: 1400, TAP: dev, Socket: sock, Log: log,
		Signer: trust.NewSigner(id, nil), Directory: trust.NewDirectory(ca.Cert, "test", 0, nil), Identity: id})
	m = NewManager(Config{Identity: id, CA: ca.Cert, Network: "test", Socket: sock, NAT: st, Signal: nowhere{}, Data: dp, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	// Two peers: one before this node in ID order (it offers), one after.
	// (A one-byte counter gave 256 candidates, all on one side of about
	// one ID in 128: the loop then spun for ever, as a full run found.)
	for i := uint32(0); lower.IsZero() || higher.IsZero(); i++ {
		p := nodeid.ID(sha256.Sum256(binary.BigEndian.AppendUint32(nil, i)))
		if p.Less(id.ID) {
			lower = p
		} else {
			higher = p
		}
	}
	return m, lower, higher
}
