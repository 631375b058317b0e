package main

import (
	"context"
	"encoding/binary"
	"net"
	"syscall"
	"time"
)

// sendResult is the sender's JSON line. CPU comes from getrusage(RUSAGE_SELF),
// the same utime and stime the kernel shows in /proc/<pid>/stat, read by the
// process itself because the harness reaps it before it could look.
type sendResult struct {
	Sent    int64   `json:"sent"`    // datagrams the kernel accepted
	Bytes   int64   `json:"bytes"`   // their UDP payload bytes
	Errors  int64   `json:"errors"`  // failed sends (ENOBUFS and the like), not counted in Sent
	Seconds float64 `json:"seconds"` // from the first send to the end of the last
	User    float64 `json:"cpu_user"`
	Sys     float64 `json:"cpu_sys"`
}

// send streams datagrams of size bytes to group out of ifi for dur, at rate
// per second or, with rate 0, back to back.
func send(group *net.UDPAddr, ifi *net.Interface, run uint32, size int, dur time.Duration, rate float64) (*sendResult, error) {
	// IP_MULTICAST_IF must be set before connect: connect picks and caches
	// the route, and with no route to 224.0.0.0/4 in the namespace only the
	// chosen interface makes the group reachable at all.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return controlErr(c, func(fd int) error { return multicastIf(fd, ifi.Index) })
	}}
	nc, err := d.DialContext(context.Background(), "udp4", group.String())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	conn := nc.(*net.UDPConn)

	buf := make([]byte, size)
	copy(buf, magic[:])
	binary.BigEndian.PutUint32(buf[4:], run)
	res := &sendResult{}
	start := time.Now()
	end := start.Add(dur)
	var seq uint64
	for now := start; now.Before(end); now = time.Now() {
		// Paced: send what is due by now, then sleep a little. Sleeping per
		// datagram would be too coarse at tens of thousands per second.
		due := int64(1 << 62)
		if rate > 0 {
			due = int64(now.Sub(start).Seconds() * rate)
		}
		// Blasting: check the clock every 64 datagrams only.
		for i := 0; i < 64 && res.Sent+res.Errors < due; i++ {
			binary.BigEndian.PutUint64(buf[8:], seq)
			seq++
			if _, err := conn.Write(buf); err != nil {
				res.Errors++
				continue
			}
			res.Sent++
		}
		if rate > 0 && res.Sent+res.Errors >= due {
			time.Sleep(200 * time.Microsecond)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Bytes = res.Sent * int64(size)
	res.User, res.Sys = rusage()
	return res, nil
}
