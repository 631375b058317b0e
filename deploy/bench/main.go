// Command bench measures multicast delivery through ipopd against the
// kernel's own multicast over a veth, and tinc in switch mode where it is
// installed, in throw-away network namespaces, in the spirit of HAMcast's
// evaluation: one sender, one receiver, a fixed-duration stream to 239.1.1.1
// at each datagram size. Run as root from the repository root:
//
//	go run ./deploy/bench [-duration 5s] [-sizes 100,500,1000,1400] [-rate 0] [-paced 20000]
//	                      [-paths native,ipopd,tinc] [-fan 1,2,4,8] [-out FILE.csv] [-plot FILE.svg]
//
//	native:  ns native-snd ──veth── ns native-rcv
//	ipopd:   ns ipopd-alpha (ipop0 10.254.0.1) ══ ipopd link over 198.18.0.0/15 ══ ns ipopd-beta (ipop0 10.254.0.2)
//	tinc:    ns tinc-alpha  (tinc0 10.253.0.1) ══ tinc switch mode ══ ns tinc-beta (tinc0 10.253.0.2)
//
// Then the 1 → N cells (fanout.go, -fan; "" skips them): what the source
// node pays to reach N receiver nodes, by replication and down a tree.
//
// The machine is small and shared, so only ratios against the native
// baseline measured in the same run mean much; the cells of one size run
// back to back on every path to keep them comparable. Everything lives in
// namespaces the testbed creates and is removed at the end or on Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

type options struct {
	dur     time.Duration
	sizes   []int
	loads   []int // offered datagrams/s per cell; 0: as fast as the sender can
	paths   []string
	fan     []int // receiver nodes of the 1 → N cells
	csv     string
	svg     string
	started time.Time
}

func main() {
	var o options
	flag.DurationVar(&o.dur, "duration", 5*time.Second, "length of each measured stream (one cell)")
	sizes := flag.String("sizes", "100,500,1000,1400", "UDP payload sizes in bytes, comma-separated (16..1472)")
	rate := flag.Int("rate", 0, "offered load in datagrams/s (0: as fast as the sender can)")
	paced := flag.Int("paced", 20000, "also run every cell at this fixed rate in datagrams/s (0: don't)")
	paths := flag.String("paths", "native,ipopd,tinc", "paths to measure, comma-separated; tinc is skipped unless tincd is installed")
	fan := flag.String("fan", "1,2,4,8", "receiver node counts of the 1 → N cells, comma-separated (1..16; \"\": skip them)")
	flag.StringVar(&o.csv, "out", "", "also write the results as CSV to this file")
	flag.StringVar(&o.svg, "plot", "", "also draw received packets/s as an SVG bar chart to this file")
	flag.Parse()

	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		fatal(err)
	}
	if o.fan, err = parseFan(*fan); err != nil {
		fatal(err)
	}
	if *rate < 0 || *paced < 0 || o.dur < 500*time.Millisecond {
		fatal(fmt.Errorf("-rate and -paced must be ≥ 0 and -duration ≥ 500ms"))
	}
	o.loads = []int{*rate}
	if *paced > 0 && *paced != *rate {
		o.loads = append(o.loads, *paced)
	}
	for p := range strings.SplitSeq(*paths, ",") {
		switch p = strings.TrimSpace(p); p {
		case "": // -paths "": the 1 → N cells only
		case "native", "ipopd":
			o.paths = append(o.paths, p)
		case "tinc":
			if tincAvailable() {
				o.paths = append(o.paths, p)
			} else {
				fmt.Fprintln(os.Stderr, "bench: tincd not installed (Debian package tinc): skipping the tinc path")
			}
		default:
			fatal(fmt.Errorf("unknown path %q (native, ipopd, tinc)", p))
		}
	}
	if os.Geteuid() != 0 {
		fatal(fmt.Errorf("needs root (network namespaces and TAPs); run: sudo go run ./deploy/bench"))
	}

	tb, err := netns.New("bench")
	if err != nil {
		fatal(err)
	}
	// Whatever happens, remove the namespaces and processes.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "\nbench: interrupted, cleaning up")
		tb.Close()
		os.Exit(130)
	}()
	o.started = time.Now()
	results, err := runAll(tb, o)
	var fans []*fanResult
	if err == nil && len(o.fan) > 0 {
		var b *bench
		if b, err = newBench(tb, o.dur); err == nil {
			fans, err = runFan(tb, b, o.fan)
		}
	}
	if cerr := tb.Close(); err == nil {
		err = cerr
	}
	if len(results) > 0 {
		if rerr := report(os.Stdout, o, results); err == nil {
			err = rerr
		}
	}
	if len(fans) > 0 {
		reportFan(os.Stdout, o, fans)
	}
	if err != nil {
		fatal(err)
	}
}

// runAll sets up the paths and measures every load × size × path cell, the
// paths innermost so each size's baseline is measured next to its overlays.
func runAll(tb *netns.Testbed, o options) ([]*result, error) {
	b, err := newBench(tb, o.dur)
	if err != nil {
		return nil, err
	}
	setup := map[string]func(*netns.Testbed) (*path, error){"native": setupNative, "ipopd": setupIpopd, "tinc": setupTinc}
	var ps []*path
	for _, name := range o.paths {
		progress("setting up %s", name)
		p, err := setup[name](tb)
		if err != nil {
			return nil, fmt.Errorf("set up %s: %w", name, err)
		}
		ps = append(ps, p)
	}
	var results []*result
	for _, load := range o.loads {
		for _, size := range o.sizes {
			for _, p := range ps {
				r, err := measure(b, p, size, load)
				if err != nil {
					return results, fmt.Errorf("%s, %d B, %s: %w", p.Name, size, loadName(load), err)
				}
				progress("%-6s %4d B %-9s sent %7.0f pps, received %7.0f pps, loss %5.1f%%",
					p.Name, size, loadName(load), r.SentPPS(), r.RecvPPS(), r.Loss())
				results = append(results, r)
			}
		}
	}
	return results, nil
}

// noisy is how much CPU (percent of one core) other processes on the machine
// may use during a cell before it is measured again.
const noisy = 30

// measure runs a cell, and once more if other work on the machine disturbed
// it, keeping the less disturbed run. Only once: the usual disturbance here
// is someone's build, which outlasts several cells.
func measure(b *bench, p *path, size, load int) (*result, error) {
	r, err := b.cell(p, size, load)
	if err == nil && r.Other() > noisy {
		progress("%-6s %4d B %-9s other processes used %.0f%% of a core: measuring again", p.Name, size, loadName(load), r.Other())
		var again *result
		if again, err = b.cell(p, size, load); err == nil && again.Other() < r.Other() {
			r = again
		}
	}
	return r, err
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		// 1472 fills a 1500-byte native MTU; the header needs 16.
		if err != nil || n < 16 || n > 1472 {
			return nil, fmt.Errorf("-sizes: %q is not a size in 16..1472", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

func loadName(rate int) string {
	if rate == 0 {
		return "max"
	}
	return strconv.Itoa(rate) + " pps"
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
