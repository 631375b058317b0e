package limitlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, "cap reached", time.Hour)
	for i := 0; i < 1000; i++ {
		l.Log("n", i)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 1 {
		t.Fatalf("%d lines for 1000 events within the interval, want 1:\n%s", lines, buf.String())
	}
	if got := l.suppressed.Load(); got != 999 {
		t.Errorf("suppressed %d, want 999", got)
	}
	l.every.SetLimit(1e9) // the interval has passed
	l.every.SetBurst(1)
	time.Sleep(time.Millisecond)
	l.Log("n", 1000)
	if !strings.Contains(buf.String(), "suppressed_since_last=999") {
		t.Errorf("second line does not say what was suppressed:\n%s", buf.String())
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("a\nb"); got != `"a\nb"` {
		t.Errorf("Quote = %s", got)
	}
	if got := Quote(strings.Repeat("x", 100)); len(got) > 64+2+len("…") {
		t.Errorf("Quote not cut: %d bytes", len(got))
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Log("k", "v") // no panic
	New(nil, slog.LevelInfo, "x", 0).Log()
}
