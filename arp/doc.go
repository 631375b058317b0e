// Package arp snoops ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861,
// Neighbor Solicitation and Advertisement) on the overlay's one virtual
// Ethernet link, so that address resolution mostly stays local:
//
//	TAP read ─► tap.Classify == ARP/NDP ─► Table.Local(now, frame)
//	      Decision.Reply   ─► TAP write (we answer for a remote host)
//	      Decision.Forward ─► overlay (flood, or to the target's owner)
//	      neither          ─► dropped (the target is local: it answers itself)
//	link read (ARP/NDP) ─► Table.Remote(now, from, frame)
//	control timer: Table.Expire(now); Table.TakeAdvert() ─► delta to every link
//	new link, refresh:  Table.FullAdvert() ─► that link / every link
//	advert from a link ─► Table.Apply(now, from, advert) ─► node's MAC → link table
//	link gone          ─► Table.RemoveNode(from)
//
// The Table maps each IP address to the MAC that owns it and to the node
// the host sits behind (the zero nodeid.ID is this node: a local host, seen on
// our TAP). It learns from the sender of every request and announcement and
// from the target of every NA, never from DAD probes (RFC 4862 §5.4), ARP
// probes (RFC 5227 §2.1.1), group MACs or unspecified addresses.
//
// Bindings are not silently overwritten. A different MAC for a known IP
// replaces the old one only when announced: a gratuitous ARP (sender IP =
// target IP, RFC 5227 §2.3) or an unsolicited NA with the Override flag
// (RFC 4861 §7.2.6); otherwise it is a conflict, logged and counted, and
// the old binding stays. The same MAC seen in a frame behind another node
// is the host itself there now: the binding moves. Adverts only ever speak
// for the sender's own hosts, so a late advert never moves a binding back.
//
// Only broadcast ARP requests and multicast NS are answered (unicast ones
// are reachability probes, RFC 1122 §2.3.2.1 and RFC 4861 §7.3.3, which
// must reach the host itself), only for a remote target seen within
// Config.Age, and for IPv6 only once an NA told whether the target is a
// router: a proxy NA with the wrong Router flag would make the asker drop
// its default route (RFC 4861 §7.2.5).
//
// A Table is pure logic: no sockets, no goroutines, no clock (callers pass
// now). It is safe for concurrent use; the TAP reader and the socket reader
// both call it, under one mutex, which is fine at ARP/ND rates. The table is
// not VLAN-aware: one 802.1Q tag is parsed and copied into replies, but
// addresses are one space for all VLANs.
package arp
