package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// group is where every cell streams to.
const group = "239.1.1.1:5001"

const (
	warmRate    = 1000                   // datagrams/s of a warm-up burst
	warmBurst   = 300 * time.Millisecond // one warm-up burst
	warmTimeout = 20 * time.Second       // membership must reach the sender's node by then
	drain       = 300 * time.Millisecond // after the sender ends, for datagrams still queued
)

// bench runs cells inside one testbed with one build of the traffic program.
type bench struct {
	mcast string // deploy/bench/mcast binary
	dur   time.Duration
	run   int // last run id handed out
}

// newBench builds deploy/bench/mcast into the testbed's directory, so Close
// removes it too.
func newBench(tb *netns.Testbed, dur time.Duration) (*bench, error) {
	bin := filepath.Join(tb.Dir(), "mcast")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ipopd/ipopd/deploy/bench/mcast").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bench: go build deploy/bench/mcast: %v\n%s", err, out)
	}
	return &bench{mcast: bin, dur: dur}, nil
}

// result is one cell: one path, one datagram size, one offered load.
type result struct {
	Path    string
	Size    int   // UDP payload bytes
	Rate    int   // offered datagrams/s; 0: as fast as the sender can
	Sent    int64 // datagrams the sender's kernel accepted
	Errors  int64 // sends that failed
	Unique  int64 // distinct datagrams received
	Seconds float64

	Sender, Receiver cpu
	Nodes            []cpu // the path's daemons (ipopd or tincd on A, B); none natively
	Busy, SoftIRQ    float64
	Drops            drops // during the cell and its drain
}

func (r *result) SentPPS() float64  { return float64(r.Sent) / r.Seconds }
func (r *result) RecvPPS() float64  { return float64(r.Unique) / r.Seconds }
func (r *result) SentMbps() float64 { return r.SentPPS() * float64(r.Size) * 8 / 1e6 }
func (r *result) RecvMbps() float64 { return r.RecvPPS() * float64(r.Size) * 8 / 1e6 }

// Other is machine CPU that none of the cell's processes used, in percent
// of one core: other work on this shared machine, which makes a cell noisy.
func (r *result) Other() float64 {
	ours := r.Sender.Total() + r.Receiver.Total()
	for _, c := range r.Nodes {
		ours += c.Total()
	}
	return max(0, r.Busy-ours)
}

// Loss is the share of accepted datagrams that never arrived, in percent.
func (r *result) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 100 * float64(r.Sent-r.Unique) / float64(r.Sent)
}

// cell streams size-byte datagrams over p for b.dur at rate and measures it.
// A fresh receiver per cell keeps counts from leaking between cells; the run
// id keeps stragglers of an earlier cell out of them.
func (b *bench) cell(p *path, size, rate int) (*result, error) {
	b.run++
	run := strconv.Itoa(b.run)
	rcv, err := p.Rcv.Start("recv", nil, b.mcast, "recv", "-group", group, "-iface", p.RcvIf, "-run", run)
	if err != nil {
		return nil, err
	}
	defer rcv.Kill() // only matters on error; Stop below ends it otherwise
	if err := waitEvent(rcv, "listening", 5*time.Second); err != nil {
		return nil, err
	}
	if err := b.warmUp(p, rcv, run, size); err != nil {
		return nil, err
	}
	time.Sleep(drain)

	pids := []int{rcv.Pid()}
	for _, d := range p.Daemons {
		pids = append(pids, d.Proc.Pid())
	}
	dropsBefore, err := readDrops(p)
	if err != nil {
		return nil, err
	}
	snd, procs, busy, softirq, err := b.timedSend(p, pids, b.sendArgs(p, run, size, rate, b.dur))
	if err != nil {
		return nil, err
	}
	time.Sleep(drain)
	dropsAfter, err := readDrops(p)
	if err != nil {
		return nil, err
	}
	if err := rcv.Stop(); err != nil {
		return nil, fmt.Errorf("bench: receiver: %w\n%s", err, rcv.Log())
	}
	var got struct{ Unique int64 }
	if err := lastJSON(rcv, `"event":"done"`, &got); err != nil {
		return nil, err
	}
	return &result{
		Path: p.Name, Size: size, Rate: rate,
		Sent: snd.Sent, Errors: snd.Errors, Unique: got.Unique, Seconds: snd.Seconds,
		Sender:   cpu{User: snd.User / snd.Seconds * 100, Sys: snd.Sys / snd.Seconds * 100},
		Receiver: procs[0], Nodes: procs[1:],
		Busy: busy, SoftIRQ: softirq,
		Drops: dropsAfter.sub(dropsBefore),
	}, nil
}

// warmUp sends short bursts until the receiver has seen one: today ipopd
// floods multicast to every node, later only to nodes whose members joined,
// and that membership takes a moment to travel. Measuring starts after it
// has, whatever the overlay does.
func (b *bench) warmUp(p *path, rcv *netns.Proc, run string, size int) error {
	deadline := time.Now().Add(warmTimeout)
	for {
		args := b.sendArgs(p, run, size, warmRate, warmBurst)
		if _, err := b.send(p, append(args, "-warm")); err != nil {
			return err
		}
		if strings.Contains(rcv.Log(), `"event":"warm"`) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: no warm-up datagram reached the receiver in %s", p.Name, warmTimeout)
		}
	}
}

func (b *bench) sendArgs(p *path, run string, size, rate int, dur time.Duration) []string {
	args := []string{b.mcast, "send", "-group", group, "-iface", p.SndIf, "-run", run,
		"-size", strconv.Itoa(size), "-rate", strconv.Itoa(rate), "-duration", dur.String()}
	if rate == 0 {
		// A sender that blasts at normal priority takes a whole core and
		// leaves the receiver and both daemons fighting over the other one,
		// so at nice 19 it only gets what they leave: the cell then measures
		// how much the path carries, and the loss column how far the
		// offered load overran it.
		args = append([]string{"nice", "-n", "19"}, args...)
	}
	return args
}

// timedSend runs one measured sender with args in p's sending namespace,
// with the CPU of pids (and the machine's) over it.
func (b *bench) timedSend(p *path, pids []int, args []string) (snd *sendResult, procs []cpu, busy, softirq float64, err error) {
	before, err := takeSample(pids)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	if snd, err = b.send(p, args); err != nil {
		return nil, nil, 0, 0, err
	}
	after, err := takeSample(pids)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	procs, busy, softirq = usage(before, after)
	return snd, procs, busy, softirq, nil
}

// sendResult mirrors mcast's sender JSON line.
type sendResult struct {
	Sent, Errors int64
	Seconds      float64
	User         float64 `json:"cpu_user"`
	Sys          float64 `json:"cpu_sys"`
}

// send runs one sender to completion in p's sending namespace.
func (b *bench) send(p *path, args []string) (*sendResult, error) {
	proc, err := p.Snd.Start("send", nil, args...)
	if err != nil {
		return nil, err
	}
	select {
	case <-proc.Exited():
	case <-time.After(b.dur + 30*time.Second):
		proc.Kill()
		return nil, fmt.Errorf("bench: sender on %s hung:\n%s", p.Name, proc.Log())
	}
	if proc.ExitCode() != 0 {
		return nil, fmt.Errorf("bench: sender on %s exited with %d:\n%s", p.Name, proc.ExitCode(), proc.Log())
	}
	var r sendResult
	if err := lastJSON(proc, `"sent"`, &r); err != nil {
		return nil, err
	}
	if r.Seconds <= 0 {
		return nil, fmt.Errorf("bench: sender on %s ran for %v s", p.Name, r.Seconds)
	}
	return &r, nil
}

// waitEvent waits until proc has printed {"event":name}.
func waitEvent(proc *netns.Proc, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(proc.Log(), `"event":"`+name+`"`) {
		select {
		case <-proc.Exited():
			return fmt.Errorf("bench: %s exited before %q:\n%s", proc, name, proc.Log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: no %q within %s:\n%s", proc, name, timeout, proc.Log())
		}
	}
	return nil
}

// lastJSON decodes the last line of proc's log that contains marker.
func lastJSON(proc *netns.Proc, marker string, v any) error {
	lines := strings.Split(proc.Log(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") && strings.Contains(lines[i], marker) {
			return json.Unmarshal([]byte(lines[i]), v)
		}
	}
	return errors.New("bench: no result line from " + proc.String() + ":\n" + proc.Log())
}
