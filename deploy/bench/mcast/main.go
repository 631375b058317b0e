// Command mcast is the benchmark's traffic program: a multicast sender and
// receiver that count exactly, so deploy/bench needs no output scraping of
// iperf (whose multicast client cannot learn what the server got, and whose
// server counts loss from sequence gaps rather than datagrams seen).
//
//	mcast send -group 239.1.1.1:5001 -iface eth0 -size 100 -duration 5s [-rate PPS] -run N
//	mcast recv -group 239.1.1.1:5001 -iface eth0 -run N
//
// Every datagram starts with a 16-byte header:
//
//	0..3   "IPBM"
//	4..7   run id, big-endian; bit 31 set marks warm-up traffic
//	8..15  sequence number, big-endian, from 0
//
// The sender prints one JSON line when done. The receiver prints
// {"event":"listening"} once it has joined, {"event":"warm"} at the first
// warm-up datagram of its run, and its counts when it gets SIGTERM or SIGINT.
// Both use one plain socket and one datagram per system call, as an ordinary
// application would.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

const (
	headerLen = 16
	warmBit   = 1 << 31
)

var magic = [4]byte{'I', 'P', 'B', 'M'}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mcast send|recv [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	group := fs.String("group", "239.1.1.1:5001", "multicast group and port")
	iface := fs.String("iface", "", "interface to send on or join on (required)")
	run := fs.Uint("run", 1, "run id (below 2^31); datagrams of other runs are not counted")
	size := fs.Int("size", 100, "send: UDP payload bytes, at least 16")
	dur := fs.Duration("duration", 5*time.Second, "send: how long to send")
	rate := fs.Float64("rate", 0, "send: datagrams per second (0: as fast as possible)")
	warm := fs.Bool("warm", false, "send: mark datagrams as warm-up traffic")
	fs.Parse(os.Args[2:])

	gaddr, err := net.ResolveUDPAddr("udp4", *group)
	if err == nil && !gaddr.IP.IsMulticast() {
		err = fmt.Errorf("%s is not a multicast address", *group)
	}
	var ifi *net.Interface
	if err == nil {
		ifi, err = net.InterfaceByName(*iface)
	}
	if err == nil && (*run == 0 || *run >= warmBit) {
		err = fmt.Errorf("-run %d out of range", *run)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcast:", err)
		os.Exit(2)
	}
	var out any
	switch os.Args[1] {
	case "send":
		if *size < headerLen || *size > 65507 {
			err = fmt.Errorf("-size %d out of range %d..65507", *size, headerLen)
			break
		}
		id := uint32(*run)
		if *warm {
			id |= warmBit
		}
		out, err = send(gaddr, ifi, id, *size, *dur, *rate)
	case "recv":
		out, err = recv(gaddr, ifi, uint32(*run))
	default:
		err = fmt.Errorf("unknown mode %q (send or recv)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcast:", err)
		os.Exit(1)
	}
	emit(out)
}

// emit prints v as one JSON line on stdout, which the harness reads back
// from the process log.
func emit(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}
