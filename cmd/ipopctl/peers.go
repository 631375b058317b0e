package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/ipopd/ipopd/overlay/control"
)

func peers(args []string) error {
	p, err := fetch("peers", args, (*control.Client).Peers)
	if p == nil {
		return err
	}
	rv := p.Rendezvous
	if rv == "" {
		rv = "not connected"
	}
	fmt.Printf("rendezvous: %s; %d links; %d MACs learned\n", rv, len(p.Links), p.MACs)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PEER\tID\tROLE\tSTATE\tPATH\tLOCAL\tREMOTE\tRTT\tLOSS\tTX pkts/bytes\tRX pkts/bytes\tAGE\tKEYS")
	for _, l := range p.Links {
		state := l.State
		if l.Reason != "" && l.State == "down" {
			state += " (" + l.Reason + ")"
		}
		if l.Via != "" {
			state += ", reached via " + l.Via
		}
		if l.RoutedAround != "" {
			state += " (" + l.RoutedAround + ": routed around)"
		}
		loss := "-"
		if l.State == "up" && l.ProbesLost >= 0 {
			loss = fmt.Sprintf("%d/16", l.ProbesLost)
		}
		keys := "-"
		if l.State == "up" {
			keys = fmt.Sprintf("gen %d", l.KeyGeneration)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d/%d\t%s\t%s\n", l.Name, short(l.NodeID), dash(l.Role), state, dash(l.Path),
			dash(l.Local), dash(l.Remote), l.RTT, loss, l.TxPackets, l.TxBytes, l.RxPackets, l.RxBytes, l.Age, keys)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	nonzero := map[string]uint64{}
	for k, v := range p.Drops {
		if v > 0 {
			nonzero[k] = v
		}
	}
	if len(nonzero) > 0 {
		fmt.Printf("dropped: %s\n", classCounts(nonzero))
	}
	if p.Routed["sent"]+p.Routed["forwarded"]+p.Routed["delivered"] > 0 {
		fmt.Printf("routed through the ring: %s\n", classCounts(p.Routed))
	}
	return nil
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
