package main

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// recvResult is the receiver's final JSON line.
type recvResult struct {
	Event    string `json:"event"`    // "done"
	Received int64  `json:"received"` // datagrams of the measured run, duplicates included
	Unique   int64  `json:"unique"`   // distinct sequence numbers among them
	Bytes    int64  `json:"bytes"`    // UDP payload bytes of Received
	Warm     int64  `json:"warm"`     // warm-up datagrams of this run
	Foreign  int64  `json:"foreign"`  // anything else that reached the socket
}

// rcvBuf is the receive buffer forced on the socket, the same on every path,
// so a scheduling hiccup of the receiver does not show up as overlay loss.
const rcvBuf = 4 << 20

// maxSeq bounds the duplicate bitmap (8 MiB); later sequence numbers are
// counted but not checked for duplicates.
const maxSeq = 1 << 26

// recv joins group on ifi and counts datagrams until SIGTERM or SIGINT.
func recv(group *net.UDPAddr, ifi *net.Interface, run uint32) (*recvResult, error) {
	conn, err := net.ListenMulticastUDP("udp4", ifi, group)
	if err != nil {
		return nil, err
	}
	if err := forceRcvBuf(conn, rcvBuf); err != nil {
		conn.Close()
		return nil, err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		conn.Close() // ends the read loop below
	}()
	emit(map[string]string{"event": "listening"})

	res := &recvResult{Event: "done"}
	var seen []uint64 // bit per sequence number
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return res, nil
		}
		if err != nil {
			return nil, err
		}
		if n < headerLen || [4]byte(buf[:4]) != magic {
			res.Foreign++
			continue
		}
		switch id := binary.BigEndian.Uint32(buf[4:]); id {
		case run:
		case run | warmBit:
			if res.Warm++; res.Warm == 1 {
				emit(map[string]string{"event": "warm"})
			}
			continue
		default:
			res.Foreign++
			continue
		}
		res.Received++
		res.Bytes += int64(n)
		seq := binary.BigEndian.Uint64(buf[8:])
		if seq >= maxSeq {
			res.Unique++
			continue
		}
		w := int(seq / 64)
		for len(seen) <= w {
			seen = append(seen, 0)
		}
		if bit := uint64(1) << (seq % 64); seen[w]&bit == 0 {
			seen[w] |= bit
			res.Unique++
		}
	}
}
