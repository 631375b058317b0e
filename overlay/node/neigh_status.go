package node

import (
	"net"
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// neighbours renders the neighbour table for `ipopctl arp`.
func (n *Node) neighbours() control.Neighbours {
	names := map[nodeid.ID]string{}
	for _, l := range n.links.mgr.Peers().Links {
		if id, err := nodeid.Parse(l.NodeID); err == nil {
			names[id] = l.Name
		}
	}
	now := time.Now()
	var out control.Neighbours
	for _, e := range n.arp.Entries(now) {
		nb := control.Neighbour{IP: e.IP.String(), MAC: net.HardwareAddr(e.MAC[:]).String(), Owner: "local",
			Via: e.Via, Age: control.Duration(now.Sub(e.Seen).Truncate(time.Second))}
		if !e.Local {
			id := e.Owner
			nb.Owner, nb.OwnerID = names[id], id.String()
			if nb.Owner == "" {
				nb.Owner = id.Short()
			}
		}
		out.Entries = append(out.Entries, nb)
	}
	st := n.arp.Stats()
	out.Stats = map[string]uint64{"answered": st.Answered, "forwarded": st.Forwarded, "suppressed": st.Suppressed,
		"conflicts": st.Conflicts, "moves": st.Moves, "errors": st.Errors, "evicted": st.Evicted}
	return out
}
