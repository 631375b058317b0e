package arp

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// TakeAdvert returns the changes to local hosts since the last call, as a
// delta for every link, or nil if there are none. Each address appears
// once, with its current binding (Hosts) or the binding last advertised
// for it (Gone). At most MaxHosts are gone per advert; the rest wait for
// the next call.
func (t *Table) TakeAdvert() *Advert {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) == 0 {
		return nil
	}
	ips := make([]netip.Addr, 0, len(t.dirty))
	for ip := range t.dirty {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	a := &Advert{}
	for _, ip := range ips {
		prev, had := t.advertised[ip]
		e := t.entries[ip]
		switch {
		case e != nil && e.Local:
			if cur := e.host(); !had || cur != prev {
				a.Hosts = append(a.Hosts, cur)
				t.advertised[ip] = cur
			}
		case had:
			if len(a.Gone) == MaxHosts {
				continue // stays dirty
			}
			a.Gone = append(a.Gone, Host{IP: prev.IP, MAC: prev.MAC})
			delete(t.advertised, ip)
		}
		delete(t.dirty, ip)
	}
	if len(a.Hosts)+len(a.Gone) == 0 {
		return nil
	}
	return a
}

// FullAdvert returns every local host, for a new link and the periodic
// refresh. It leaves the deltas of TakeAdvert alone: other links still
// need them. Callers Expire first, so that it lists only fresh hosts.
func (t *Table) FullAdvert() *Advert {
	t.mu.Lock()
	a := &Advert{Full: true, Hosts: make([]Host, 0, t.lru[0].Len())}
	for f := t.lru[0].Front(); f != nil; f = f.Next() {
		a.Hosts = append(a.Hosts, f.Value.(*entry).host())
	}
	t.mu.Unlock()
	slices.SortFunc(a.Hosts, func(x, y Host) int { return x.IP.Compare(y.IP) })
	return a
}

func (e *entry) host() Host { return Host{IP: e.IP, MAC: e.MAC, Role: e.Role} }

// Apply learns the hosts node from advertises as its own and returns those
// newly bound to it (new, or changed MAC or owner), for the node's MAC →
// link table. A full advert also forgets from's hosts it no longer lists;
// a gone host is forgotten if it is still bound as from advertised it. An
// advert never takes a host from another owner or from us: that is a
// conflict (a late advert after a move, or two sites claiming an address).
// Apply takes adverts built in memory as well as decoded ones: hosts need
// not be sorted, and invalid ones are skipped and counted as errors.
func (t *Table) Apply(now time.Time, from nodeid.ID, a *Advert) (learned []Host) {
	if from.IsZero() || a == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var listed map[netip.Addr]bool
	if a.Full {
		listed = make(map[netip.Addr]bool, len(a.Hosts))
	}
	for _, h := range a.Hosts {
		if !t.validLocked(h) {
			continue
		}
		if listed != nil {
			listed[h.IP] = true
		}
		c := claim{ip: h.IP, mac: h.MAC, owner: from, via: ViaAdvert, role: h.Role, advert: true}
		if t.learnLocked(now, c) == bound {
			learned = append(learned, t.entries[h.IP].host())
		}
	}
	if a.Full {
		t.removeOwnedLocked(from, listed)
	}
	for _, h := range a.Gone {
		if !t.validLocked(h) {
			continue
		}
		if e := t.entries[h.IP]; e != nil && e.Owner == from && e.MAC == h.MAC {
			t.removeLocked(e)
		}
	}
	return learned
}

// validLocked checks an advert's host as Apply needs it, counting errors.
func (t *Table) validLocked(h Host) bool {
	if !hostAddr(h.IP) || !unicastMAC(h.MAC) || h.Role > RoleRouter {
		t.stats.Errors++
		return false
	}
	return true
}
