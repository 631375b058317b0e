package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// report prints the Markdown table, the ratios against native, and notes on
// how the numbers were taken; then writes the CSV and the plot if asked.
func report(w io.Writer, o options, rs []*result) error {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(w, "\n### Multicast 1 → 1, %s per cell (%s, %d CPUs, Linux %s, %s)\n\n",
		o.dur, time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintln(w, "| load | size | path | sent pps | sent Mbit/s | recv pps | recv Mbit/s | loss % | CPU sender | CPU receiver | CPU node A | CPU node B | machine (other) | dropped at % |")
	fmt.Fprintln(w, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rs {
		nodes := [2]string{"–", "–"}
		for i, c := range r.Nodes {
			nodes[i] = cpuCell(c)
		}
		mark := ""
		if r.Other() > noisy {
			mark = " *"
		}
		fmt.Fprintf(w, "| %s | %d B | %s%s | %.0f | %.1f | %.0f | %.1f | %.1f | %s | %s | %s | %s | %.0f (%.0f) | %s |\n",
			loadName(r.Rate), r.Size, r.Path, mark, r.SentPPS(), r.SentMbps(), r.RecvPPS(), r.RecvMbps(), r.Loss(),
			cpuCell(r.Sender), cpuCell(r.Receiver), nodes[0], nodes[1], r.Busy, r.Other(), dropCell(r))
	}
	for _, overlay := range []string{"ipopd", "tinc"} {
		ratios(w, o, rs, overlay)
	}
	fmt.Fprintf(w, `
Sender and receiver: deploy/bench/mcast (Go, one UDP socket each, one
datagram per system call; exact counts: the receiver counts distinct sequence
numbers of its run). Mbit/s is UDP payload. Loss: accepted by the sender's
kernel but never received. "max": the sender blasts at nice 19, so it only
gets CPU the path leaves over.
CPU: percent of one core over the cell, "total (system part)", from
/proc/<pid>/stat utime+stime (the sender's from its own getrusage); node A
sends, node B receives. Machine: all %d cores, from /proc/stat; in brackets
what none of the cell's processes used, i.e. other work on this shared
machine (a cell where that exceeded %d is measured once more, and marked *
if it stayed that busy).
Dropped at: the kernel's drop counters in percent of datagrams sent: sending
interface (tx; on an overlay, the TAP queue the sending daemon did not drain)
/ the receiving daemon's UDP sockets / receiving interface (rx) / the
receiver's socket. They count packets, so a fragmented datagram counts twice.
ipop0 and tinc0 have MTU 1400, so a 1400-byte datagram crosses an overlay as
two IP fragments (-sizes 1372 fits in one); the native veth has MTU 1500.
Whole run: %s.
`, runtime.NumCPU(), noisy, time.Since(o.started).Round(time.Second))
	if o.csv != "" {
		if err := writeCSV(o.csv, rs); err != nil {
			return err
		}
	}
	if o.svg != "" {
		if err := os.WriteFile(o.svg, plot(o, rs), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// dropCell shows the drop counters as percent of datagrams sent.
func dropCell(r *result) string {
	pct := func(n int64) string {
		if r.Sent == 0 {
			return "–"
		}
		return strconv.FormatFloat(100*float64(n)/float64(r.Sent), 'f', 1, 64)
	}
	d := r.Drops
	return pct(d.SndIf) + " / " + pct(d.DaemonSock) + " / " + pct(d.RcvIf) + " / " + pct(d.RcvSock)
}

func cpuCell(c cpu) string { return fmt.Sprintf("%.0f (%.0f)", c.Total(), c.Sys) }

// ratios prints overlay's received pps over native's for each load and size.
func ratios(w io.Writer, o options, rs []*result, overlay string) {
	find := func(path string, load, size int) *result {
		for _, r := range rs {
			if r.Path == path && r.Rate == load && r.Size == size {
				return r
			}
		}
		return nil
	}
	if find(overlay, o.loads[0], o.sizes[0]) == nil || find("native", o.loads[0], o.sizes[0]) == nil {
		return
	}
	fmt.Fprintf(w, "\n%s / native, received pps (same run):\n\n| load |", overlay)
	for _, s := range o.sizes {
		fmt.Fprintf(w, " %d B |", s)
	}
	fmt.Fprint(w, "\n|---|"+strings.Repeat("--:|", len(o.sizes))+"\n")
	for _, load := range o.loads {
		fmt.Fprintf(w, "| %s |", loadName(load))
		for _, s := range o.sizes {
			ov, nat := find(overlay, load, s), find("native", load, s)
			if ov == nil || nat == nil || nat.RecvPPS() == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %.2f |", ov.RecvPPS()/nat.RecvPPS())
		}
		fmt.Fprintln(w)
	}
}

func writeCSV(file string, rs []*result) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"load_pps", "size", "path", "seconds", "sent", "send_errors", "received", "sent_pps", "sent_mbps",
		"recv_pps", "recv_mbps", "loss_pct", "cpu_sender", "cpu_sender_sys", "cpu_receiver", "cpu_receiver_sys",
		"cpu_node_a", "cpu_node_a_sys", "cpu_node_b", "cpu_node_b_sys", "cpu_machine", "cpu_machine_softirq", "cpu_machine_other",
		"drop_snd_if", "drop_daemon_sock", "drop_rcv_if", "drop_rcv_sock"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	for _, r := range rs {
		row := []string{strconv.Itoa(r.Rate), strconv.Itoa(r.Size), r.Path, g(r.Seconds),
			strconv.FormatInt(r.Sent, 10), strconv.FormatInt(r.Errors, 10), strconv.FormatInt(r.Unique, 10),
			g(r.SentPPS()), g(r.SentMbps()), g(r.RecvPPS()), g(r.RecvMbps()), g(r.Loss()),
			g(r.Sender.Total()), g(r.Sender.Sys), g(r.Receiver.Total()), g(r.Receiver.Sys)}
		for i := range 2 {
			if i < len(r.Nodes) {
				row = append(row, g(r.Nodes[i].Total()), g(r.Nodes[i].Sys))
			} else {
				row = append(row, "", "")
			}
		}
		d := r.Drops
		cw.Write(append(row, g(r.Busy), g(r.SoftIRQ), g(r.Other()), strconv.FormatInt(d.SndIf, 10),
			strconv.FormatInt(d.DaemonSock, 10), strconv.FormatInt(d.RcvIf, 10), strconv.FormatInt(d.RcvSock, 10)))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
