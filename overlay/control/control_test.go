package control

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServeStatusAndLifecycle(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	path := filepath.Join(t.TempDir(), "run", "ipopd.sock")

	if _, _, err := NewClient(path).Status(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Status with no daemon = %v, want ErrNotRunning", err)
	}

	// A stale socket file (a crashed daemon's) is replaced.
	os.MkdirAll(filepath.Dir(path), 0o755)
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	s, err := Listen(path, log)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	want := Status{Name: "alpha", NodeID: "3fa9", Uptime: Duration(90 * time.Second), TAP: TAPStatus{Name: "ipop0", MTU: 1400, RxFrames: map[string]uint64{"igmp": 2}}}
	s.Handle("/v1/status", func() (any, error) { return want, nil })
	done := make(chan error)
	go func() { done <- s.Serve() }()

	if _, err := Listen(path, log); !errors.Is(err, ErrInUse) {
		t.Errorf("second Listen = %v, want ErrInUse", err)
	}
	got, raw, err := NewClient(path).Status()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alpha" || got.Uptime != want.Uptime || got.TAP.RxFrames["igmp"] != 2 {
		t.Errorf("Status = %+v", got)
	}
	if len(raw) == 0 || !isJSONObject(raw) {
		t.Errorf("raw body %q", raw)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, %v; want 0660", fi.Mode(), err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after Close", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

func isJSONObject(b []byte) bool { return len(b) > 1 && b[0] == '{' }
