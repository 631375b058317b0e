package nat

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"go.uber.org/goleak"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// loopback is the only place tests touch: host candidates on lo only.
func loopback() Settings {
	return Settings{Interfaces: []string{"lo"}, IncludeLoopback: true}
}

// testLog logs to the test, at Debug when NAT_TEST_LOG=debug, else Warn.
// pion goroutines may log after the test returned, which t.Log forbids, so
// the writer goes quiet at cleanup.
func testLog(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelWarn
	if os.Getenv("NAT_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

// checkLeaks fails the test if goroutines started during it outlive its
// cleanups. Call it first, so its cleanup runs last.
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// listen opens a Socket that is closed at cleanup.
func listen(t *testing.T, s Settings) *Socket {
	t.Helper()
	sk, err := Listen(s, nil, testLog(t))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = sk.Close() })
	return sk
}

// collect serves sk into a channel of copied packets.
func collect(t *testing.T, sk *Socket) <-chan Packet {
	ch := make(chan Packet, 1024)
	done := make(chan error, 1)
	go func() {
		done <- sk.Serve(func(batch []Packet) {
			for _, p := range batch {
				ch <- Packet{Data: bytes.Clone(p.Data), Addr: p.Addr}
			}
		})
	}()
	t.Cleanup(func() {
		_ = sk.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// Until Serve has installed the Handler, data is dropped by design.
	waitFor(t, func() bool { return sk.handler.Load() != nil })
	return ch
}

// newAgent builds an agent that is closed (gracefully, so its goroutines
// are gone) at cleanup.
func newAgent(t *testing.T, sk *Socket, st Settings, extra []iceserver.TURN) *ice.Agent {
	t.Helper()
	a, err := sk.NewAgent(st, extra, testLog(t))
	if err != nil {
		t.Fatalf("NewAgent: %v", err)
	}
	t.Cleanup(func() { _ = a.GracefulClose() })
	return a
}

// gather runs candidate gathering to completion and returns the candidates.
func gather(t *testing.T, a *ice.Agent) []ice.Candidate {
	t.Helper()
	var (
		mu    sync.Mutex
		cands []ice.Candidate
		done  = make(chan struct{})
	)
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
			return
		}
		mu.Lock()
		cands = append(cands, c)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.GatherCandidates(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("gathering did not complete")
	}
	mu.Lock()
	defer mu.Unlock()
	return cands
}

// connect plays signaling in-process: candidates and credentials go across
// in their wire form (Marshal/Unmarshal), a dials, b accepts.
func connect(t *testing.T, a, b *ice.Agent) (ca, cb *ice.Conn) {
	t.Helper()
	trickle := func(from, to *ice.Agent) {
		if err := from.OnCandidate(func(c ice.Candidate) {
			if c == nil {
				return
			}
			rc, err := ice.UnmarshalCandidate(c.Marshal())
			if err != nil {
				t.Errorf("unmarshal candidate: %v", err)
				return
			}
			if err := to.AddRemoteCandidate(rc); err != nil {
				t.Errorf("add remote candidate: %v", err)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := from.GatherCandidates(); err != nil {
			t.Fatal(err)
		}
	}
	trickle(a, b)
	trickle(b, a)
	aUfrag, aPwd, err := a.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	bUfrag, bPwd, err := b.GetLocalUserCredentials()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		var err error
		cb, err = b.Accept(ctx, aUfrag, aPwd)
		errc <- err
	}()
	ca, err = a.Dial(ctx, bUfrag, bPwd)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return ca, cb
}

// readFull reads one message from an ice.Conn with a timeout (ice.Conn
// ignores deadlines).
func readConn(t *testing.T, c io.Reader) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		ch <- res{buf[:n], err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.b
	case <-time.After(10 * time.Second):
		t.Fatal("read timed out")
		return nil
	}
}
