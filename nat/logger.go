package nat

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLogs adapts pion's logging.LoggerFactory to a *slog.Logger. pion is
// chatty: its Trace and Debug both become slog Debug, and messages are only
// formatted when the level is enabled, so a quiet logger costs one check.
type pionLogs struct{ log *slog.Logger }

// newPionLogs returns a LoggerFactory writing to log (discarding if nil).
func newPionLogs(log *slog.Logger) logging.LoggerFactory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return pionLogs{log: log}
}

// NewLogger implements logging.LoggerFactory; the scope ("ice", "turn",
// "turnc") becomes the "pion" attribute.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// demote lists pion messages (by substring) that our design causes on
// purpose or that describe a client's mistake rather than ours; they are
// logged at a lower level so operators do not chase them.
var demote = []struct {
	substr string
	to     slog.Level
}{
	// We bind 0.0.0.0 deliberately: one socket for every interface, and the
	// mux enumerates the (filtered) interfaces itself.
	{"UDPMuxDefault should not listening on unspecified address", slog.LevelDebug},
	// Any unsolicited STUN (scanners, a peer's stale checks) lands here.
	{"No Username attribute in STUN message", slog.LevelDebug},
	// Trickle ICE: checks start before the peer's candidates arrive.
	{"Failed to ping without candidate pairs", slog.LevelDebug},
	// Candidates' read loops report their own socket's closing on Close.
	{"use of closed network connection", slog.LevelDebug},
	// The TURN server reports every bad request (wrong password, scanner
	// noise) as an Error; it is the client's problem, and our auth handler
	// already logs who failed.
	{"Failed to handle datagram", slog.LevelInfo},
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	// Warnings and errors may be demoted, so they are formatted first.
	if level < slog.LevelWarn && !l.log.Enabled(ctx, level) {
		return
	}
	msg := format
	if len(args) > 0 {
		// pion sometimes formats errors with %w, which only Errorf knows.
		msg = fmt.Sprintf(strings.ReplaceAll(format, "%w", "%v"), args...)
	}
	if level >= slog.LevelWarn {
		for _, d := range demote {
			if strings.Contains(msg, d.substr) {
				level = d.to
				break
			}
		}
		if !l.log.Enabled(ctx, level) {
			return
		}
	}
	l.log.Log(ctx, level, msg)
}

func (l pionLogger) Trace(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf(slog.LevelInfo, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
