// Package limitlog logs the events that other nodes can cause as often as
// they like (a bound reached, a rate exceeded, a refusal): the first at
// once, then at most one per interval, each saying how many were left
// unsaid since the last. A counter counts every event; the log says that
// it is happening without letting a flood of them fill the disk.
package limitlog

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Every is the default interval between two lines of one Logger.
const Every = 10 * time.Second

// Logger logs one kind of event at one level, rate-limited. The zero
// value is not usable; make one with New. It is safe for concurrent use.
type Logger struct {
	log        *slog.Logger
	level      slog.Level
	msg        string
	every      *rate.Limiter
	suppressed atomic.Uint64
}

// New returns a Logger writing msg at level to log at most once per
// every (0: Every). A nil log discards.
func New(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = Every
	}
	return &Logger{log: log, level: level, msg: msg, every: rate.NewLimiter(rate.Every(every), 1)}
}

// Log logs the event with args (slog key-value pairs), or counts it as
// suppressed when the last line is too recent. Values from the wire in
// args must already be made safe to show (see Quote).
func (l *Logger) Log(args ...any) {
	if l == nil {
		return
	}
	if !l.every.Allow() {
		l.suppressed.Add(1)
		return
	}
	if !l.log.Enabled(context.Background(), l.level) {
		l.suppressed.Store(0)
		return
	}
	l.log.Log(context.Background(), l.level, l.msg, append(args, "suppressed_since_last", l.suppressed.Swap(0))...)
}

// Quote is s as a log shows a string from the wire: quoted, cut to 64
// bytes.
func Quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
