package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/spf13/pflag"
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
	fmt.Fprintln(w, "GROUP\tLOCAL\tTIMER\tSUBSCRIBED NODES\tSENT AS\tTREE HERE\tFWD frames/bytes\tDELIVERED frames/bytes")
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
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d/%d\n", gs.Group, local, timer, dash(strings.Join(subs, ", ")),
			dash(gs.Mode), treeRole(gs.Tree), gs.FwdFrames, gs.FwdBytes, gs.DlvFrames, gs.DlvBytes)
	}
	return w.Flush()
}

// treeRole is this node's place in a group's tree in a few words.
func treeRole(t *control.TreeStatus) string {
	if t == nil {
		return "-"
	}
	role := "root"
	if !t.Root {
		role = fmt.Sprintf("parent %s (depth %d)", nodeName(*t.Parent), t.Depth)
	}
	switch len(t.Children) {
	case 0:
		return role
	case 1:
		return role + ", 1 child"
	}
	return fmt.Sprintf("%s, %d children", role, len(t.Children))
}

func nodeName(n control.TreeNode) string {
	if n.Name != "" {
		return n.Name
	}
	return short(n.NodeID)
}

// tree prints this node's place in one group's tree, and the whole tree
// as its nodes tell it.
func tree(args []string) error {
	fs := flags("tree", "tree GROUP [--here] [--json] [--socket PATH | --config FILE]")
	asJSON := fs.Bool("json", false, `print {"here": this node's entry of the group, "walk": the whole tree} as JSON`)
	here := fs.Bool("here", false, "only this node's place: do not ask the tree's nodes (the walk takes up to 2 s)")
	sock, cfgFile := socketFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: ipopctl tree GROUP (one multicast group, e.g. 239.1.1.1)", errUsage)
	}
	group, err := netip.ParseAddr(fs.Arg(0))
	if err != nil || !group.IsMulticast() {
		return fmt.Errorf("%w: %q is not a multicast group address", errUsage, fs.Arg(0))
	}
	path, err := socketPath(*sock, *cfgFile)
	if err != nil {
		return err
	}
	c := control.NewClient(path)
	g, _, err := c.Groups()
	if err != nil {
		return err
	}
	var gs *control.GroupStatus
	for i := range g.Groups {
		if a, err := netip.ParseAddr(g.Groups[i].Group); err == nil && a == group.Unmap() {
			gs = &g.Groups[i]
		}
	}
	var walk *control.TreeWalk
	if !*here && gs != nil {
		if walk, _, err = c.Tree(group.Unmap().String()); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(struct {
			Here *control.GroupStatus `json:"here"`
			Walk *control.TreeWalk    `json:"walk"`
		}{gs, walk})
	}
	if gs == nil {
		fmt.Printf("%s: not known here (no members here or anywhere this node knows of)\n", group)
		return nil
	}
	defer printWalk(walk)
	fmt.Printf("group %s: %d subscriber node(s) elsewhere; this node sends it as: %s\n", gs.Group, len(gs.Remote), dash(gs.Mode))
	t := gs.Tree
	if t == nil {
		fmt.Println("this node is not on the group's tree")
		return nil
	}
	fmt.Printf("key %s\n", short(t.Key))
	if t.Root {
		fmt.Println("this node: the root (nearest the key)")
	} else {
		how := "the ring's next hop toward the key"
		switch {
		case t.Detour:
			how = "a detour: no link is nearer the key, one of the links announced this node"
		case t.Adopted:
			how = "adopted: the next hop had no room"
		}
		fmt.Printf("this node: depth %d, parent %s (%s, %s)\n", t.Depth, nodeName(*t.Parent), short(t.Parent.NodeID), how)
	}
	if gs.Local != nil {
		fmt.Printf("  members here: %s\n", gs.Local.Filter)
	}
	for _, c := range t.Children {
		fmt.Printf("  child %s (%s)\n", nodeName(c), short(c.NodeID))
	}
	if len(t.Children) == 0 {
		fmt.Println("  no children")
	}
	fmt.Println("(what this node holds; each tree node knows its parent and children only)")
	return nil
}

// printWalk prints the whole tree as its nodes answered: from each root
// (and each node whose parent did not name it), children indented.
func printWalk(w *control.TreeWalk) {
	if w == nil {
		return
	}
	byID := map[string]*control.TreeWalkNode{}
	for i := range w.Nodes {
		byID[w.Nodes[i].NodeID] = &w.Nodes[i]
	}
	named := map[string]bool{} // listed as a child by the parent it names
	for _, n := range w.Nodes {
		for _, ch := range n.Children {
			if c := byID[ch.NodeID]; c != nil && c.Parent != nil && c.Parent.NodeID == n.NodeID {
				named[ch.NodeID] = true
			}
		}
	}
	fmt.Printf("\nthe whole tree, as its nodes answered (%d answered", len(w.Nodes))
	if len(w.Unanswered) > 0 {
		var names []string
		for _, u := range w.Unanswered {
			names = append(names, nodeName(u))
		}
		fmt.Printf(", no answer from %s", strings.Join(names, ", "))
	}
	fmt.Println("):")
	seen := map[string]bool{}
	var show func(tn control.TreeNode, indent string, from string)
	show = func(tn control.TreeNode, indent, from string) {
		id := tn.NodeID
		n := byID[id]
		if n == nil {
			fmt.Printf("%s%s: no answer\n", indent, nodeName(tn))
			return
		}
		if seen[id] {
			fmt.Printf("%s%s: again (a cycle in what the nodes said)\n", indent, nodeName(n.TreeNode))
			return
		}
		seen[id] = true
		var what []string
		switch {
		case n.Root:
			what = append(what, "root")
		case !n.On:
			what = append(what, "not on the tree")
		default:
			what = append(what, fmt.Sprintf("depth %d", n.Depth))
		}
		if n.Parent != nil && n.Parent.NodeID != from {
			what = append(what, "says its parent is "+nodeName(*n.Parent))
		}
		if n.Here {
			what = append(what, "this node")
		}
		fmt.Printf("%s%s (%s)\n", indent, nodeName(n.TreeNode), strings.Join(what, ", "))
		for _, c := range n.Children {
			show(c, indent+"  ", id)
		}
	}
	for _, n := range w.Nodes {
		if n.Root || n.On && !named[n.NodeID] && !seen[n.NodeID] {
			show(n.TreeNode, "  ", "")
		}
	}
}
