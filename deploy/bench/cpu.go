package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the tick counts in /proc/<pid>/stat and /proc/stat.
// The kernel reports them in USER_HZ, which is 100 on every Linux ABI Go
// supports, whatever CONFIG_HZ the kernel was built with.
const userHZ = 100

// cpu is CPU use over a cell in percent of one core: 100 is one core busy
// for the whole cell, and a multi-threaded process may exceed it.
type cpu struct{ User, Sys float64 }

func (c cpu) Total() float64 { return c.User + c.Sys }

// procTicks reads utime and stime of pid from /proc/<pid>/stat. Kernel work
// done in softirq context (much of the network stack) is charged as stime to
// whichever task was running (on kernels without IRQ time accounting, such
// as this one), so it lands on the sender, receiver or daemons unevenly, but
// it lands on them: machine busy time minus theirs is other work.
func procTicks(pid int) (user, sys int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces, so
	// count fields from the last ')': state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	user, err1 := strconv.ParseInt(f[14-3], 10, 64)
	sys, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bench: /proc/%d/stat: bad utime/stime", pid)
	}
	return user, sys, nil
}

// machine is a reading of the first line of /proc/stat, the sum over cores.
type machine struct {
	busy, softirq, total int64
	cores                int
}

func readMachine() (machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, err
	}
	var m machine
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) > 8 && f[0] == "cpu":
			// user nice system idle iowait irq softirq steal
			var v [8]int64
			for i := range v {
				v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
			}
			m.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
			m.softirq = v[6]
			m.total = m.busy + v[3] + v[4]
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
			m.cores++
		}
	}
	return m, nil
}

// sample is the CPU counters of a set of processes and the machine at one
// moment.
type sample struct {
	at    time.Time
	ticks [][2]int64
	mach  machine
}

func takeSample(pids []int) (sample, error) {
	s := sample{at: time.Now(), ticks: make([][2]int64, len(pids))}
	for i, pid := range pids {
		u, k, err := procTicks(pid)
		if err != nil {
			return s, err
		}
		s.ticks[i] = [2]int64{u, k}
	}
	var err error
	s.mach, err = readMachine()
	return s, err
}

// usage turns two samples into per-process CPU and the machine's busy and
// softirq time, all in percent of one core.
func usage(a, b sample) (procs []cpu, busy, softirq float64) {
	wall := b.at.Sub(a.at).Seconds()
	for i := range a.ticks {
		procs = append(procs, cpu{
			User: float64(b.ticks[i][0]-a.ticks[i][0]) / userHZ / wall * 100,
			Sys:  float64(b.ticks[i][1]-a.ticks[i][1]) / userHZ / wall * 100,
		})
	}
	if dt := float64(b.mach.total - a.mach.total); dt > 0 {
		scale := float64(b.mach.cores) * 100 / dt
		busy = float64(b.mach.busy-a.mach.busy) * scale
		softirq = float64(b.mach.softirq-a.mach.softirq) * scale
	}
	return procs, busy, softirq
}
