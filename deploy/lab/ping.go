package lab

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// A Pinger is the real ping running in a namespace until Stop: one echo
// every interval, each reply logged with its time (ping -D).
type Pinger struct {
	p *netns.Proc
}

// StartPing starts ping from h to dst, one echo every interval (≥ 10 ms),
// each waiting up to 1 s. name labels its log (a process label: letters,
// digits and '-').
func StartPing(h *netns.Host, name, dst string, interval time.Duration) (*Pinger, error) {
	p, err := h.Start(name, nil, "ping", "-n", "-D", "-W", "1", "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), dst)
	if err != nil {
		return nil, fmt.Errorf("lab: ping %s: %w", dst, err)
	}
	return &Pinger{p: p}, nil
}

// Replies returns when each reply arrived, in order, read from ping's log.
func (pg *Pinger) Replies() []time.Time {
	var out []time.Time
	for line := range strings.SplitSeq(pg.p.Log(), "\n") {
		// [1764600000.123456] 64 bytes from 10.254.0.2: icmp_seq=5 ttl=64 time=0.512 ms
		stamp, rest, ok := strings.Cut(strings.TrimPrefix(line, "["), "] ")
		if !ok || !strings.Contains(rest, " bytes from ") {
			continue
		}
		sec, err := strconv.ParseFloat(stamp, 64)
		if err != nil {
			continue
		}
		out = append(out, time.Unix(0, int64(sec*1e9)))
	}
	return out
}

// Stop ends ping.
func (pg *Pinger) Stop() error { return pg.p.Stop() }
