package node

import (
	"time"

	"github.com/ipopd/ipopd/overlay/control"
	"github.com/ipopd/ipopd/tap"
)

// Status renders the node for `ipopctl status`.
func (n *Node) Status() control.Status {
	cfg := n.cfg.Load()
	var addrs []string
	if cfg.Tap.Address.IsValid() {
		addrs = append(addrs, cfg.Tap.Address.String())
	}
	if cfg.Tap.Address6.IsValid() {
		addrs = append(addrs, cfg.Tap.Address6.String())
	}
	ts := n.data.TAPStats()
	rx := make(map[string]uint64, tap.NumClasses)
	for c := range tap.NumClasses {
		rx[c.String()] = ts.RxFrames[c]
	}
	var ring *control.RingStatus
	if n.links.mgr != nil {
		ring = n.links.mgr.Ring()
	}
	return control.Status{
		Ring:         ring,
		Name:         n.id.Name,
		NodeID:       n.id.ID.String(),
		Network:      n.id.Network,
		Version:      n.opts.Version,
		Started:      n.started,
		Uptime:       control.Duration(n.opts.Now().Sub(n.started).Truncate(time.Second)),
		CertNotAfter: n.id.NotAfter,
		TAP: control.TAPStatus{
			Name:      n.dev.Name(),
			Mode:      string(cfg.Tap.Mode),
			MAC:       n.dev.HardwareAddr().String(),
			MTU:       n.dev.MTU(),
			Addresses: addrs,
			Bridge:    cfg.Tap.Bridge,
			RxFrames:  rx,
			RxBytes:   ts.RxBytes,
			TxFrames:  ts.TxFrames,
			TxBytes:   ts.TxBytes,
			Dropped:   n.dev.Dropped(),
		},
	}
}
