package mcast

import (
	"net/netip"
	"sort"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

// Status renders the plane for `ipopctl groups`; name gives the names of
// nodes (empty when unknown). It runs on the plane's loop for a consistent
// view of the querier.
func (mc *Plane) Status(name func(nodeid.ID) string) control.Groups {
	var out control.Groups
	mc.loop.Call(func() {
		now := time.Now()
		for _, q := range mc.router.Queriers(now) {
			qs := control.QuerierStatus{Family: q.Family, Querier: q.Querier, Version: q.Version,
				OtherPresent: control.Duration(q.OtherQuerierPresent), NextQuery: control.Duration(q.NextQuery.Round(time.Second))}
			if q.OtherQuerier.IsValid() {
				qs.OtherQuerier, qs.OtherVersion = q.OtherQuerier.String(), q.OtherVersion
			}
			out.Queriers = append(out.Queriers, qs)
		}
		st := mc.state.Load()
		byGroup := map[netip.Addr]*control.GroupStatus{}
		get := func(g netip.Addr) *control.GroupStatus {
			if gs := byGroup[g]; gs != nil {
				return gs
			}
			gs := &control.GroupStatus{Group: g.String(), Remote: []control.Subscription{}}
			byGroup[g] = gs
			return gs
		}
		for _, g := range mc.router.Groups(now) {
			if g.Filter.Empty() {
				continue
			}
			lg := &control.LocalGroup{Filter: g.Filter.String(), Compat: g.Compat, GroupTimer: control.Duration(g.GroupTimer.Round(time.Second))}
			if g.LastReporter.IsValid() {
				lg.LastReporter = g.LastReporter.String()
			}
			for _, s := range g.Sources {
				lg.Sources = append(lg.Sources, control.SourceTimer{Source: s.Addr.String(), Timer: control.Duration(s.Timer.Round(time.Second)), Forward: s.Forward})
			}
			get(g.Group).Local = lg
		}
		for _, g := range st.view.Groups() {
			gs := get(g)
			for _, sub := range st.view.Nodes(g) {
				gs.Remote = append(gs.Remote, control.Subscription{Name: name(sub.Node), NodeID: sub.Node.String(),
					Filter: sub.Filter.String()})
			}
		}
		for _, g := range st.stats.groups() {
			c := st.stats.get(g)
			gs := get(g)
			gs.FwdFrames, gs.FwdBytes = c.fwdFrames.Load(), c.fwdBytes.Load()
			gs.DlvFrames, gs.DlvBytes = c.dlvFrames.Load(), c.dlvBytes.Load()
		}
		for _, role := range mc.trees.t.Roles() {
			node := func(id nodeid.ID) control.TreeNode { return control.TreeNode{Name: name(id), NodeID: id.String()} }
			ts := &control.TreeStatus{Root: role.Root, Adopted: role.Adopted, Detour: role.Detour, Depth: role.Depth, Children: []control.TreeNode{},
				Key: topology.GroupKey(role.Group).String()}
			if !role.Parent.IsZero() {
				p := node(role.Parent)
				ts.Parent = &p
			}
			for _, c := range role.Children {
				ts.Children = append(ts.Children, node(c))
			}
			if ts.Root || ts.Parent != nil {
				get(role.Group).Tree = ts
			}
		}
		for _, gs := range byGroup {
			gs.Mode = "replicate"
			if g, err := netip.ParseAddr(gs.Group); err == nil && st.treeMode[g] {
				gs.Mode = "tree"
			}
			out.Groups = append(out.Groups, *gs)
		}
	})
	sort.Slice(out.Groups, func(i, j int) bool {
		x, _ := netip.ParseAddr(out.Groups[i].Group)
		y, _ := netip.ParseAddr(out.Groups[j].Group)
		return x.Less(y)
	})
	return out
}
