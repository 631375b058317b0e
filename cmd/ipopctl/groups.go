package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ipopd/ipopd/overlay/control"
)

func groups(args []string) error {
	g, err := fetch("groups", args, (*control.Client).Groups)
	if g == nil {
		return err
	}
	for _, q := range g.Queriers {
		proto := map[int]string{4: "IGMP", 6: "MLD"}[q.Family]
		if q.Querier {
			fmt.Printf("%s querier: this node (v%d), next general query in %s\n", proto, q.Version, q.NextQuery)
		} else {
			fmt.Printf("%s querier: %s (v%d), present for %s more\n", proto, dash(q.OtherQuerier), q.OtherVersion, q.OtherPresent)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tLOCAL\tTIMER\tSUBSCRIBED NODES\tFWD frames/bytes\tDELIVERED frames/bytes")
	for _, gs := range g.Groups {
		local, timer := "-", "-"
		if gs.Local != nil {
			local = gs.Local.Filter
			// Note hosts of an older version than the querier's family
			// (IGMPv3, MLDv2 are current).
			current, proto := 3, "IGMP"
			if strings.Contains(gs.Group, ":") {
				current, proto = 2, "MLD"
			}
			if gs.Local.Compat != 0 && gs.Local.Compat < current {
				local += fmt.Sprintf(" (%sv%d hosts)", proto, gs.Local.Compat)
			}
			timer = gs.Local.GroupTimer.String()
		}
		var subs []string
		for _, s := range gs.Remote {
			name := s.Name
			if name == "" {
				name = short(s.NodeID)
			}
			subs = append(subs, name+" "+s.Filter)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%d/%d\n", gs.Group, local, timer, dash(strings.Join(subs, ", ")),
			gs.FwdFrames, gs.FwdBytes, gs.DlvFrames, gs.DlvBytes)
	}
	return w.Flush()
}
