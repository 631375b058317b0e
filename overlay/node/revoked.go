package node

import (
	"fmt"
	"sync"

	"github.com/ipopd/ipopd/overlay/identity"
)

// revocations is the newest revocation list the node has applied, from
// its file (trust.revoked) or from the rendezvous: a list counts only if
// the network CA signed it and it is newer than the one in force.
type revocations struct {
	mu  sync.Mutex
	cur *identity.Revocations
}

// apply puts list in force if it is newer, and reports whether it did.
// Revoked nodes lose their links within a tick of link control and are
// refused from then on (certificates, signaling, control messages).
func (n *Node) applyRevocations(list *identity.Revocations, from string) bool {
	n.revoked.mu.Lock()
	defer n.revoked.mu.Unlock()
	if n.revoked.cur != nil && list.Seq <= n.revoked.cur.Seq {
		return false
	}
	n.revoked.cur = list
	n.data.Directory().Revoke(list.Nodes...)
	n.log.Info("revocation list in force", "from", from, "seq", list.Seq, "nodes", len(list.Nodes))
	return true
}

// loadRevocations reads trust.revoked, if set.
func (n *Node) loadRevocations(file string) error {
	if file == "" {
		return nil
	}
	list, err := identity.LoadRevocations(file, n.ca, n.id.Network)
	if err != nil {
		return fmt.Errorf("trust.revoked: %w", err)
	}
	n.applyRevocations(list, file)
	return nil
}

// onRevoked takes a revocation list the rendezvous handed out.
func (n *Node) onRevoked(pem []byte) {
	list, err := identity.ParseRevocations(pem, n.ca, n.id.Network)
	if err != nil {
		n.log.Warn("revocation list from the rendezvous refused", "err", err)
		return
	}
	n.applyRevocations(list, "rendezvous")
}
