package nat

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestPionLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newPionLogs(log).NewLogger("ice")
	l.Tracef("trace %d", 1)
	l.Debug("debug")
	l.Infof("info %s", "x")
	l.Warnf("%w: boom", errors.New("wrapped"))
	l.Warn("UDPMuxDefault should not listening on unspecified address, use NewMultiUDPMuxFromPort instead")
	l.Errorf("Failed to handle datagram: %v", "integrity check failed")
	l.Error("real trouble")
	want := []string{
		`level=DEBUG msg="trace 1" pion=ice`,
		`level=DEBUG msg=debug pion=ice`,
		`level=INFO msg="info x" pion=ice`,
		`level=WARN msg="wrapped: boom" pion=ice`,
		`level=DEBUG msg="UDPMuxDefault should not listening`,
		`level=INFO msg="Failed to handle datagram: integrity check failed"`,
		`level=ERROR msg="real trouble" pion=ice`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}

	// A quiet logger drops pion's chatter without formatting it.
	buf.Reset()
	quiet := newPionLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))).NewLogger("ice")
	quiet.Debugf("%v", panicky{})
	quiet.Warn("No Username attribute in STUN message from 1.2.3.4")
	if buf.Len() != 0 {
		t.Errorf("quiet logger wrote %q", buf.String())
	}
	newPionLogs(nil).NewLogger("x").Error("to nowhere") // nil logger: no panic
}

// panicky fails the test if a disabled Debugf formats its arguments.
type panicky struct{}

func (panicky) String() string { panic("formatted a disabled debug message") }
