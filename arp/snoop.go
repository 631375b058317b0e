package arp

import (
	"errors"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// Decision is what to do with a frame Local was given.
type Decision struct {
	// Reply, when not nil, is a complete Ethernet frame (ARP reply or NA)
	// to write to the TAP; the request must not cross the overlay. It is
	// the caller's: the Table keeps no reference.
	Reply []byte
	// Forward: the frame goes on to the overlay (unknown target,
	// announcements, replies, unicast probes, frames Local could not parse:
	// anything not answered). With neither set the frame is dropped: its
	// target is local and answers itself.
	Forward bool
}

var forward = Decision{Forward: true}

// Local snoops an ARP or ND frame read from the TAP (optionally 802.1Q
// tagged; Reply keeps the tag), learns its sender as a local host and
// decides. Requests for local targets are suppressed; requests for remote
// targets are answered when the answer is known and fresh (see the package
// comment for which ones). A frame that does not parse is forwarded, as a
// switch would, and the error returned; RS, RA, redirects and other ARP
// operations are forwarded with a nil error.
func (t *Table) Local(now time.Time, frame []byte) (Decision, error) {
	a, n, err := parse(frame)
	t.mu.Lock()
	defer t.mu.Unlock()
	d := forward
	switch {
	case err != nil:
		if errors.Is(err, ErrUnsupported) {
			err = nil
		} else {
			t.stats.Errors++
		}
	case a != nil:
		d = t.localARPLocked(now, a)
	default:
		d = t.localNDLocked(now, n)
	}
	switch {
	case d.Reply != nil:
		t.stats.Answered++
	case d.Forward:
		t.stats.Forwarded++
	default:
		t.stats.Suppressed++
	}
	return d, err
}

func (t *Table) localARPLocked(now time.Time, a *ARP) Decision {
	t.learnLocked(now, arpClaim(a, nodeid.ID{}))
	if a.Op != OpRequest || a.Gratuitous() {
		return forward
	}
	e := t.entries[a.TargetIP]
	switch {
	case e == nil:
		return forward
	case e.Local:
		return Decision{}
	case t.fresh(now, e) && a.Eth.Dst == broadcastMAC && !a.Probe() && unicastMAC(a.SenderMAC):
		// Probes (RFC 5227 §2.1.1) go on, so the real host defends its
		// address; unicast requests too (see the package comment).
		return Decision{Reply: arpReply(a, e.IP, e.MAC)}
	}
	return forward
}

func (t *Table) localNDLocked(now time.Time, n *ND) Decision {
	if c, ok := ndClaim(n, nodeid.ID{}); ok {
		t.learnLocked(now, c)
	}
	if n.Type != TypeNS {
		return forward
	}
	e := t.entries[n.Target]
	to := linkAddr(n)
	switch {
	case e == nil:
		return forward
	case e.Local:
		return Decision{}
	case t.fresh(now, e) && !n.DAD() && n.Dst == solicitedNode(n.Target) && e.Role != RoleUnknown && unicastMAC(to):
		// A DAD probe is never answered: the real owner defends its
		// address with an NA to all nodes (RFC 4862 §5.4.3), which a
		// proxy's solicited NA could not replace.
		return Decision{Reply: naReply(n, to, e.IP, e.MAC, e.Role == RoleRouter)}
	}
	return forward
}

// Remote snoops an ARP or ND frame that arrived from node from over the
// overlay and learns its sender as a host owned by from. Unsupported
// messages are ignored with a nil error.
func (t *Table) Remote(now time.Time, from nodeid.ID, frame []byte) error {
	if from.IsZero() {
		t.mu.Lock()
		t.stats.Errors++
		t.mu.Unlock()
		return ErrNodeID
	}
	a, n, err := parse(frame)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case errors.Is(err, ErrUnsupported):
		return nil
	case err != nil:
		t.stats.Errors++
		return err
	case a != nil:
		t.learnLocked(now, arpClaim(a, from))
	default:
		if c, ok := ndClaim(n, from); ok {
			t.learnLocked(now, c)
		}
	}
	return nil
}

// parse parses frame as ARP or ND, whichever its ethertype says.
func parse(frame []byte) (*ARP, *ND, error) {
	eth, etype, p, err := parseEth(frame)
	switch {
	case err != nil:
		return nil, nil, err
	case etype == etherTypeARP:
		a, err := parseARP(eth, p)
		return a, nil, err
	case etype == etherTypeIPv6:
		n, err := parseND(eth, p)
		return nil, n, err
	}
	return nil, nil, ErrNotNeighbor
}

// arpClaim is what a says about its sender (RFC 826: every ARP packet
// binds its sender). A probe binds nothing; learnLocked ignores its
// unspecified address.
func arpClaim(a *ARP, owner nodeid.ID) claim {
	c := claim{ip: a.SenderIP, mac: a.SenderMAC, owner: owner, via: ViaARPRequest}
	switch {
	case a.Gratuitous():
		c.via, c.override = ViaGARP, true
	case a.Op == OpReply:
		c.via = ViaARPReply
	}
	return c
}

// ndClaim is what n says: an NS binds its source (unless DAD), an NA its
// target, to the link-layer address option or else the Ethernet source
// (RFC 4861 allows leaving the option out of unicast messages).
func ndClaim(n *ND, owner nodeid.ID) (claim, bool) {
	m := linkAddr(n)
	if n.Type == TypeNS {
		return claim{ip: n.Src, mac: m, owner: owner, via: ViaNS}, !n.DAD()
	}
	c := claim{ip: n.Target, mac: m, owner: owner, via: ViaNA, role: RoleHost}
	if n.Router {
		c.role = RoleRouter
	}
	if !n.Solicited {
		// An unsolicited NA with Override is the host announcing a new
		// binding (RFC 4861 §7.2.6); a solicited one with a different MAC
		// is a second host answering for the address: a conflict.
		c.via, c.override = ViaUnsolicitedNA, n.Override
	}
	return c, true
}

// linkAddr is the MAC n speaks for: its link-layer address option, else
// the Ethernet source.
func linkAddr(n *ND) [6]byte {
	if n.HasLinkAddr {
		return n.LinkAddr
	}
	return n.Eth.Src
}
