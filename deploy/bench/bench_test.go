package main

import (
	"io"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// TestSmoke runs the smallest cell on the native and ipopd paths and checks
// that the plumbing yields sane numbers: traffic arrives, loss is a
// percentage, every CPU figure is there, and the report renders. It asserts
// nothing about speed (DESIGN.md: speed is measured, never asserted).
func TestSmoke(t *testing.T) {
	tb := netns.NewT(t)
	b, err := newBench(tb, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Paced and small, so the test stays gentle on a machine running other
	// tests in parallel.
	const size, rate = 100, 2000
	var results []*result
	for _, setup := range []func(*netns.Testbed) (*path, error){setupNative, setupIpopd} {
		p, err := setup(tb)
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.cell(p, size, rate)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: sent %d, received %d in %.2fs, loss %.1f%%, CPU sender %.0f%% receiver %.0f%% nodes %v",
			r.Path, r.Sent, r.Unique, r.Seconds, r.Loss(), r.Sender.Total(), r.Receiver.Total(), r.Nodes)
		if r.Sent <= 0 || r.Unique <= 0 || r.Unique > r.Sent {
			t.Errorf("%s: sent %d, received %d; want 0 < received ≤ sent", r.Path, r.Sent, r.Unique)
		}
		if l := r.Loss(); l < 0 || l > 100 {
			t.Errorf("%s: loss %v%%, want within 0..100", r.Path, l)
		}
		if len(r.Nodes) != len(p.Daemons) {
			t.Errorf("%s: CPU of %d daemons, want %d", r.Path, len(r.Nodes), len(p.Daemons))
		}
		for _, c := range append([]cpu{r.Sender, r.Receiver}, r.Nodes...) {
			if !sane(c.User) || !sane(c.Sys) {
				t.Errorf("%s: CPU %+v, want finite and ≥ 0", r.Path, c)
			}
		}
		if !sane(r.Busy) || !sane(r.SoftIRQ) {
			t.Errorf("%s: machine CPU %v (softirq %v), want finite and ≥ 0", r.Path, r.Busy, r.SoftIRQ)
		}
		if d := r.Drops; d.SndIf < 0 || d.DaemonSock < 0 || d.RcvIf < 0 || d.RcvSock < 0 {
			t.Errorf("%s: drop counters went backwards: %+v", r.Path, d)
		}
		results = append(results, r)
	}
	dir := t.TempDir()
	o := options{dur: time.Second, sizes: []int{size}, loads: []int{rate}, started: time.Now(),
		csv: filepath.Join(dir, "bench.csv"), svg: filepath.Join(dir, "bench.svg")}
	if err := report(io.Discard, o, results); err != nil {
		t.Errorf("report: %v", err)
	}
}

func sane(v float64) bool { return v >= 0 && !math.IsNaN(v) && !math.IsInf(v, 0) }

// TestFanSmoke runs the 1 → N cells for 1 and 2 receivers, both ways,
// and checks the plumbing: every receiver gets the stream, the counters
// are there, the report renders. Nothing about speed.
func TestFanSmoke(t *testing.T) {
	tb := netns.NewT(t)
	b, err := newBench(tb, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := runFan(tb, b, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d cells, want 4", len(rs))
	}
	for _, r := range rs {
		t.Logf("%s 1 → %d: sent %d, fewest received %d, source CPU %v, %.0f B and %.2f packets per datagram",
			r.Mode, r.N, r.Sent, r.MinGot, r.Source, r.BytesPer(), r.PktsPer())
		if r.Sent <= 0 || r.MinGot <= 0 || r.MinGot > r.Sent || r.TxPkts <= 0 || r.TxBytes < r.TxPkts {
			t.Errorf("%s 1 → %d: sent %d, fewest received %d, tx %d packets %d bytes", r.Mode, r.N, r.Sent, r.MinGot, r.TxPkts, r.TxBytes)
		}
		if !sane(r.Source.User) || !sane(r.Source.Sys) {
			t.Errorf("%s 1 → %d: source CPU %+v", r.Mode, r.N, r.Source)
		}
	}
	reportFan(io.Discard, options{dur: time.Second}, rs)
}
