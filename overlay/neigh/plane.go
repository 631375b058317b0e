// Package neigh is the node's neighbour plane: it snoops ARP and IPv6 ND
// on both sides, answers requests for remote hosts it knows, and tells the
// overlay which hosts sit behind this node.
//
//	TAP reader ──ARP/ND frame──► arp.Table.Local: learn the local host; answer
//	                             from the table (reply to the TAP, request not
//	                             forwarded) or let it cross the overlay
//	socket reader ──ARP/ND frame from a node──► arp.Table.Remote: learn the
//	                             sender as that node's
//	loop: local host changes ──advert (kind 2)──► every node; adverts from
//	      nodes ──► table + the data plane's MAC table (unicast to a known
//	      host goes straight to its node, directly or routed)
//
// The table has its own lock (the two readers use it); adverts, expiry
// and link events run on the plane's loop (taskloop).
package neigh

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/internal/taskloop"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Timing: local host changes go out every AdvertEvery; a full advert goes
// to every node every RefreshInterval, to every new link, and to a node
// that asks (sync); JoinDelay after the first link, a joining node
// broadcasts its full advert (its ring links are up by then).
const (
	AdvertEvery     = time.Second
	RefreshInterval = 30 * time.Second
	JoinDelay       = 2 * time.Second
	expireCheck     = 5 * time.Second
)

// Data is what the plane uses of the data plane (dataplane.Plane): its
// control messages and the TAP, and the MAC table adverts feed.
type Data interface {
	dataplane.Control
	LearnMAC(mac [6]byte, id nodeid.ID, ip netip.Addr)
	ExpireMACs(now time.Time)
	CertOf(id nodeid.ID) *identity.Peer
}

// Plane is the neighbour plane of one node.
type Plane struct {
	data    Data
	log     *slog.Logger
	table   *arp.Table
	loop    *taskloop.Loop
	joined  bool // loop-only: the join broadcast is done or scheduled
	refused atomic.Uint64
}

// New returns the plane over table and registers its adverts (control
// kind 2) with the data plane; Run starts it.
func New(table *arp.Table, data Data, log *slog.Logger) *Plane {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nb := &Plane{data: data, log: log, table: table, loop: taskloop.New(256)}
	data.HandleControl(dataplane.KindNeighbours, nb.onAdvert)
	return nb
}

// Run is the plane's loop; it returns when ctx is done.
func (nb *Plane) Run(ctx context.Context) {
	defer nb.loop.Close()
	adverts := time.NewTicker(AdvertEvery)
	defer adverts.Stop()
	refresh := time.NewTicker(RefreshInterval)
	defer refresh.Stop()
	expire := time.NewTicker(expireCheck)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-nb.loop.Tasks():
			f()
		case <-adverts.C:
			if a := nb.table.TakeAdvert(); a != nil {
				nb.send(nodeid.ID{}, a)
			}
		case <-refresh.C:
			nb.send(nodeid.ID{}, nb.table.FullAdvert())
		case now := <-expire.C:
			nb.table.Expire(now)
			nb.data.ExpireMACs(now)
		}
	}
}

// Local handles an ARP/ND frame read from the TAP (dataplane.Neighbours):
// it reports whether the frame goes on to the overlay.
func (nb *Plane) Local(frame []byte) bool {
	d, err := nb.table.Local(time.Now(), frame)
	if err != nil {
		return true // not understood: behave like a switch and pass it on
	}
	if d.Reply != nil {
		if _, err := nb.data.WriteTAP([][]byte{d.Reply}); err != nil {
			nb.log.Debug("writing a neighbour reply", "err", err)
		}
	}
	return d.Forward
}

// Remote learns from an ARP/ND frame that arrived from node from
// (dataplane.Neighbours).
func (nb *Plane) Remote(from nodeid.ID, frame []byte) {
	_ = nb.table.Remote(time.Now(), from, frame) // counted in the table's stats
}

// send sends an advert to one node, or to all (zero ID).
func (nb *Plane) send(to nodeid.ID, a *arp.Advert) {
	b, err := a.MarshalBinary()
	if err != nil {
		nb.log.Error("neighbour advert", "err", err)
		return
	}
	payload := append([]byte{dataplane.KindNeighbours}, b...)
	if to.IsZero() {
		nb.data.BroadcastControl(payload)
		return
	}
	if err := nb.data.SendControl(to, payload); err != nil {
		nb.log.Debug("neighbour advert not sent", "to", to.Short(), "err", err)
	}
}

// onAdvert takes a neighbour advert from a node (a reader goroutine).
// Only hosts whose addresses the node's certificate allows count: a
// member cannot claim another's address, first or ever.
func (nb *Plane) onAdvert(from nodeid.ID, payload []byte, _ bool) error {
	var a arp.Advert
	if err := a.UnmarshalBinary(slices.Clone(payload[1:])); err != nil {
		return err
	}
	cert := nb.data.CertOf(from)
	if cert == nil {
		return fmt.Errorf("advert from %s: certificate unknown", from.Short())
	}
	a.Hosts = nb.allowed(cert, a.Hosts)
	a.Gone = nb.allowed(cert, a.Gone)
	nb.loop.Post(func() {
		for _, h := range nb.table.Apply(time.Now(), from, &a) {
			nb.data.LearnMAC(h.MAC, from, h.IP)
		}
	})
	return nil
}

// allowed keeps the hosts whose addresses cert allows, counting the rest.
func (nb *Plane) allowed(cert *identity.Peer, hosts []arp.Host) []arp.Host {
	out := hosts[:0]
	for _, h := range hosts {
		if cert.Allows(h.IP) {
			out = append(out, h)
		} else {
			nb.refused.Add(1)
		}
	}
	return out
}

// Refused counts advertised hosts refused: addresses outside the
// advertising node's certificate.
func (nb *Plane) Refused() uint64 { return nb.refused.Load() }

// SendFull sends our full advert to node to (it asked for our state).
func (nb *Plane) SendFull(to nodeid.ID) {
	nb.loop.Post(func() { nb.send(to, nb.table.FullAdvert()) })
}

// LinkUp: a new link gets our full advert, and the first one schedules
// the join broadcast.
func (nb *Plane) LinkUp(peer nodeid.ID) {
	nb.loop.Post(func() {
		nb.send(peer, nb.table.FullAdvert())
		if !nb.joined {
			nb.joined = true
			time.AfterFunc(JoinDelay, func() {
				nb.loop.Post(func() { nb.send(nodeid.ID{}, nb.table.FullAdvert()) })
			})
		}
	})
}

// LinkLost: the hosts behind the peer go with the link (they come back
// with its next advert if it is still there).
func (nb *Plane) LinkLost(peer nodeid.ID) {
	nb.loop.Post(func() { nb.table.RemoveNode(peer) })
}

// Status renders the table for `ipopctl arp`; name gives the names of
// nodes (empty when unknown).
func (nb *Plane) Status(name func(nodeid.ID) string) control.Neighbours {
	now := time.Now()
	var out control.Neighbours
	for _, e := range nb.table.Entries(now) {
		n := control.Neighbour{IP: e.IP.String(), MAC: net.HardwareAddr(e.MAC[:]).String(), Owner: "local",
			Via: e.Via, Age: control.Duration(now.Sub(e.Seen).Truncate(time.Second))}
		if !e.Local {
			n.Owner, n.OwnerID = name(e.Owner), e.Owner.String()
			if n.Owner == "" {
				n.Owner = e.Owner.Short()
			}
		}
		out.Entries = append(out.Entries, n)
	}
	st := nb.table.Stats()
	out.Stats = map[string]uint64{"answered": st.Answered, "forwarded": st.Forwarded, "suppressed": st.Suppressed,
		"conflicts": st.Conflicts, "moves": st.Moves, "errors": st.Errors, "evicted": st.Evicted,
		"refused_not_in_certificate": nb.refused.Load()}
	return out
}

var _ dataplane.Neighbours = (*Plane)(nil)
