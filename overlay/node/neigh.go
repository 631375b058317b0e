package node

// Neighbour learning (ARP and IPv6 ND).
//
//	TAP reader ──ARP/ND frame──► arp.Table.Local: learn local host; answer
//	                             from the table (reply to the TAP, request not
//	                             forwarded) or let it cross the overlay
//	links ──ARP/ND frame──► arp.Table.Remote: learn the sender as the peer's
//	control loop: local host changes ──advert──► every node; adverts from
//	                 nodes ──► table + the MAC table (unicast to a known
//	                 host goes straight to its node, directly or routed)

import (
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/tap"
)

// Control message kind for neighbour adverts (after ctlMembership).
const ctlNeighbours = 2

// advertEvery is how often local host changes are sent; a full advert goes
// with every membership refresh and to every new link.
const advertEvery = time.Second

// snoopLocal handles an ARP/ND frame read from the TAP; it reports whether
// the frame should go on to the overlay.
func (n *Node) snoopLocal(frame []byte) bool {
	d, err := n.arp.Local(time.Now(), frame)
	if err != nil {
		return true // not understood: behave like a switch and pass it on
	}
	if d.Reply != nil {
		if _, err := n.tapw.Write([][]byte{d.Reply}); err != nil {
			n.log.Debug("writing a neighbour reply", "err", err)
		}
	}
	return d.Forward
}

// snoopRemote learns from ARP/ND frames that arrive over links.
func (n *Node) snoopRemote(from nodeid.ID, frame []byte) {
	switch tap.Classify(frame) {
	case tap.ClassARP, tap.ClassNDP:
		n.arp.Remote(time.Now(), from, frame)
	}
}

// sendAdvert sends a neighbour advert to one node, or to all (zero ID).
func (mc *mcast) sendAdvert(to nodeid.ID, a *arp.Advert) {
	b, err := a.MarshalBinary()
	if err != nil {
		mc.n.log.Error("neighbour advert", "err", err)
		return
	}
	mc.control(to, append([]byte{ctlNeighbours}, b...), "neighbour advert")
}

// applyAdvert takes a neighbour advert from a node (on the control loop).
func (mc *mcast) applyAdvert(from nodeid.ID, payload []byte) {
	var a arp.Advert
	if err := a.UnmarshalBinary(payload); err != nil {
		mc.n.log.Debug("bad neighbour advert", "from", from.Short(), "err", err)
		return
	}
	for _, h := range mc.n.arp.Apply(time.Now(), from, &a) {
		mc.n.links.mgr.LearnMAC(h.MAC, from)
	}
}
