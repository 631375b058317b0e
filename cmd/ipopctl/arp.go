package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/ipopd/ipopd/overlay/control"
)

func neighbours(args []string) error {
	nb, err := fetch("arp", args, (*control.Client).Neighbours)
	if nb == nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "IP\tMAC\tOWNER\tLEARNED FROM\tAGE")
	for _, e := range nb.Entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.IP, e.MAC, e.Owner, e.Via, e.Age)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("requests answered locally %d, forwarded %d; conflicts %d, moves %d\n",
		nb.Stats["answered"], nb.Stats["forwarded"], nb.Stats["conflicts"], nb.Stats["moves"])
	return nil
}
