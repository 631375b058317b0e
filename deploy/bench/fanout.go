package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ipopd/ipopd/deploy/lab"
	"github.com/ipopd/ipopd/deploy/netns"
)

// The 1 → N cells (-fan): what a source node pays to reach N receiver
// nodes, by replication and down a tree, in one run. One overlay per
// way of sending, each a source node and as many receiver nodes as the
// largest N; for each N, a receiver on the first N of them, then a
// paced stream from the source:
//
//	replicate: multicast.replicate_max 1024: the source sends each
//	           datagram to each receiver node (N copies)
//	tree:      replicate_max 0, fanout 2: the source (off the tree) puts
//	           each datagram onto the tree once; tree nodes pass it on
//
// Per cell: the source ipopd's CPU, and the bytes and packets its host
// sent into the underlay (eth0) per datagram, everything included
// (probes and control traffic too, a small share at this rate).

// fanRate and fanSize are the cells' stream: paced, so that every cell
// offers the same load and the source's cost per datagram compares.
const (
	fanRate = 2000
	fanSize = 1000
)

type fanResult struct {
	Mode    string
	N       int
	Sent    int64 // datagrams the sender's kernel accepted
	Seconds float64
	Source  cpu     // the source node's ipopd
	All     float64 // every node's ipopd together, percent of one core
	TxBytes int64   // the source host's eth0, during the cell
	TxPkts  int64
	MinGot  int64 // distinct datagrams, at the receiver that got fewest
}

func (r *fanResult) BytesPer() float64 { return float64(r.TxBytes) / float64(max(r.Sent, 1)) }
func (r *fanResult) PktsPer() float64  { return float64(r.TxPkts) / float64(max(r.Sent, 1)) }
func (r *fanResult) GotPct() float64   { return 100 * float64(r.MinGot) / float64(max(r.Sent, 1)) }

// fanOverlay is one overlay of the 1 → N cells.
type fanOverlay struct {
	mode  string
	src   *lab.Node
	rcv   []*lab.Node
	nodes []*lab.Node
}

func parseFan(s string) ([]int, error) {
	var ns []int
	if s = strings.TrimSpace(s); s == "" || s == "0" {
		return nil, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("-fan: %q is not a number of receivers in 1..16", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// setupFan starts one overlay of the 1 → N cells with receivers receiver
// nodes, sending by mode (replicate or tree).
func setupFan(tb *netns.Testbed, mode string, receivers int) (*fanOverlay, error) {
	mc := map[string]any{"replicate_max": 1024}
	if mode == "tree" {
		mc = map[string]any{"replicate_max": 0, "fanout": 2}
	}
	l, err := lab.New(tb, "fan"+mode)
	if err != nil {
		return nil, err
	}
	rvHost, err := tb.AddPublicHost("fan-" + mode + "-rv")
	if err != nil {
		return nil, err
	}
	rv, err := l.StartRendezvous(rvHost, false)
	if err != nil {
		return nil, err
	}
	o := &fanOverlay{mode: mode}
	ok := false
	defer func() {
		if !ok {
			o.stop() // the testbed removes the rest
		}
	}()
	for i := range receivers + 1 {
		name := fmt.Sprintf("%c%d", mode[0], i)
		h, err := tb.AddPublicHost("fan-" + name)
		if err != nil {
			return nil, err
		}
		n, err := l.Start(h, lab.Spec{Name: name, Address: fmt.Sprintf("10.254.0.%d/16", i+1), Rendezvous: rv,
			Config: map[string]any{"log": map[string]any{"level": "info"}, "multicast": mc}})
		if err != nil {
			return nil, err
		}
		o.nodes = append(o.nodes, n)
	}
	o.src, o.rcv = o.nodes[0], o.nodes[1:]
	// The ring: each node linked to at least two others (the tree's
	// joins and the membership travel on it).
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range o.nodes {
		for {
			p, err := n.Peers()
			up := 0
			if err == nil {
				for _, l := range p.Links {
					if l.State == "up" {
						up++
					}
				}
			}
			if up >= min(2, receivers) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("bench: %s overlay: %s has %d links up after 90 s", mode, n.Name, up)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	ok = true
	return o, nil
}

// stop ends the overlay's nodes, so the next one has the machine.
func (o *fanOverlay) stop() {
	for _, n := range o.nodes {
		n.Proc.Stop()
	}
}

// fanCell streams to the first n receiver nodes of o for b.dur.
func (b *bench) fanCell(o *fanOverlay, n int) (*fanResult, error) {
	b.run++
	run := strconv.Itoa(b.run)
	var rcvs []*netns.Proc
	defer func() {
		for _, r := range rcvs {
			r.Kill()
		}
	}()
	for _, node := range o.rcv[:n] {
		r, err := node.Host.Start("recv", nil, b.mcast, "recv", "-group", group, "-iface", "ipop0", "-run", run)
		if err != nil {
			return nil, err
		}
		rcvs = append(rcvs, r)
		if err := waitEvent(r, "listening", 5*time.Second); err != nil {
			return nil, err
		}
	}
	p := &path{Name: o.mode, Snd: o.src.Host, SndIf: "ipop0"}
	deadline := time.Now().Add(warmTimeout)
	for {
		if _, err := b.send(p, append(b.sendArgs(p, run, fanSize, warmRate, warmBurst), "-warm")); err != nil {
			return nil, err
		}
		all := true
		for _, r := range rcvs {
			all = all && strings.Contains(r.Log(), `"event":"warm"`)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench: %s, %d receivers: not all got a warm-up datagram in %s", o.mode, n, warmTimeout)
		}
	}
	time.Sleep(drain)
	txBefore, err := ifTx(o.src.Host, "eth0")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, n := range o.nodes {
		pids = append(pids, n.Proc.Pid())
	}
	snd, procs, _, _, err := b.timedSend(p, pids, b.sendArgs(p, run, fanSize, fanRate, b.dur))
	if err != nil {
		return nil, err
	}
	time.Sleep(drain)
	txAfter, err := ifTx(o.src.Host, "eth0")
	if err != nil {
		return nil, err
	}
	r := &fanResult{Mode: o.mode, N: n, Sent: snd.Sent, Seconds: snd.Seconds,
		TxBytes: txAfter.Bytes - txBefore.Bytes, TxPkts: txAfter.Packets - txBefore.Packets, MinGot: -1}
	r.Source = procs[0]
	for _, c := range procs {
		r.All += c.Total()
	}
	for _, rcv := range rcvs {
		if err := rcv.Stop(); err != nil {
			return nil, fmt.Errorf("bench: receiver: %w\n%s", err, rcv.Log())
		}
		var got struct{ Unique int64 }
		if err := lastJSON(rcv, `"event":"done"`, &got); err != nil {
			return nil, err
		}
		if r.MinGot < 0 || got.Unique < r.MinGot {
			r.MinGot = got.Unique
		}
	}
	rcvs = nil
	return r, nil
}

type txCount struct{ Bytes, Packets int64 }

// ifTx is an interface's transmit counters.
func ifTx(h *netns.Host, dev string) (txCount, error) {
	out, err := h.Run("ip", "-j", "-s", "link", "show", "dev", dev)
	if err != nil {
		return txCount{}, err
	}
	var links []struct {
		Stats map[string]txCount `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return txCount{}, fmt.Errorf("bench: ip -j -s link show dev %s in %s: %v\n%s", dev, h, err, out)
	}
	return links[0].Stats["tx"], nil
}

// runFan measures the 1 → N cells, replication first, then trees.
func runFan(tb *netns.Testbed, b *bench, ns []int) ([]*fanResult, error) {
	most := 0
	for _, n := range ns {
		most = max(most, n)
	}
	var out []*fanResult
	for _, mode := range []string{"replicate", "tree"} {
		progress("setting up the 1 → N overlay (%s, %d receiver nodes)", mode, most)
		o, err := setupFan(tb, mode, most)
		if err != nil {
			return out, err
		}
		for _, n := range ns {
			r, err := b.fanCell(o, n)
			if err != nil {
				o.stop()
				return out, err
			}
			progress("1 → %d %-9s source ipopd %5.1f%% CPU (all %5.1f%%), %6.0f B and %4.2f packets into the underlay per datagram, fewest received %5.1f%%",
				n, mode, r.Source.Total(), r.All, r.BytesPer(), r.PktsPer(), r.GotPct())
			out = append(out, r)
		}
		o.stop()
	}
	return out, nil
}

// reportFan prints the 1 → N table and the ratios against N = 1 and
// against replication.
func reportFan(w io.Writer, o options, rs []*fanResult) {
	fmt.Fprintf(w, "\n### Multicast 1 → N, %d B at %d datagrams/s, %s per cell\n\n", fanSize, fanRate, o.dur)
	fmt.Fprintln(w, "| sent as | N | sent pps | source ipopd CPU | all ipopd CPU | underlay B / datagram | packets / datagram | fewest received % | CPU / (CPU at N=1) | B / (B at N=1) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	first := map[string]*fanResult{}
	for _, r := range rs {
		if first[r.Mode] == nil {
			first[r.Mode] = r
		}
		f := first[r.Mode]
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %.0f | %.0f | %.2f | %.1f | %.2f | %.2f |\n", r.Mode, r.N, float64(r.Sent)/r.Seconds,
			cpuCell(r.Source), r.All, r.BytesPer(), r.PktsPer(), r.GotPct(), r.Source.Total()/max(f.Source.Total(), 0.01), r.BytesPer()/max(f.BytesPer(), 1))
	}
	fmt.Fprint(w, `
The source node is not a receiver. Replication sends N copies from it; a
tree (fanout 2) takes one from it whatever N, and its nodes pass the rest
on, each at most 2 copies. Underlay bytes and packets are everything the
source host's eth0 sent during the cell (the overlay's own traffic too).
CPU in percent of one core; "all": every node's ipopd of the overlay (the
receiver nodes and the idle ones too). Each tree node checks the origin's
signature of every frame (about 105 µs): on this 2-core machine a tree of
9 nodes at 2,000 frames/s needs more CPU than there is, which is what
"fewest received" then shows.
`)
}
