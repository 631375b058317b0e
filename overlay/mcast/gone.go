package mcast

// Gone nodes. A node that crashed is noticed by the nodes linked to it
// within seconds (link liveness), but the others hold its memberships
// (and hosts) until they expire, 3 refreshes. So a node that loses a link
// asks the peer for its state (a routed Sync); when nothing comes back
// within probeWait it tells every node (a signed ring broadcast, control
// kind 19, [19, ID]) that the node seems gone. Such a notice is only a
// hint: each receiver asks the node itself (its own routed Sync) and
// forgets it only when that goes unanswered too, so a member cannot make
// others forget a live node, only make them ask it (at most once per
// node per probeEvery).
//
//	link lost to X ─► forget X here, Sync X ─probeWait─► silent? ─► broadcast gone(X)
//	gone(X) from Y ─► Sync X ─probeWait─► silent? ─► forget X (memberships, hosts)
//	anything from X ─► not gone

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/topology"
)

const (
	// probeWait is how long a node asked for its state has to answer:
	// routed round trips are milliseconds; the answer may wait behind
	// the asker's own Sync rate limit at the node (syncEvery), which is
	// why the answer is "any message", not only the full state.
	probeWait = 1500 * time.Millisecond
	// probeEvery bounds how often one node is probed on others' word.
	probeEvery = 30 * time.Second
	// maxProbes bounds the probes under way (and remembered).
	maxProbes = 1024
)

// probes is the loop's state of nodes that may be gone.
type probes struct {
	active  map[nodeid.ID]*probe
	last    map[nodeid.ID]time.Time // when each was last probed on another's word
	notices *rate.Limiter           // gone notices taken, from all nodes
	ignored atomic.Uint64           // notices not acted on: over the rate, the bounds, or about us
	log     *limitlog.Logger
}

type probe struct {
	answered bool
	announce bool // ours: tell every node if it stays silent
}

func (p *probes) init(log *slog.Logger) {
	p.active, p.last = map[nodeid.ID]*probe{}, map[nodeid.ID]time.Time{}
	p.notices = rate.NewLimiter(20, 100)
	p.log = limitlog.New(log, slog.LevelInfo, "notices that a node is gone: over the rate or the bound, ignored (gone_ignored)", 0)
}

// heard marks id as there: a probe of it ends answered.
func (p *probes) heard(id nodeid.ID) {
	if pr := p.active[id]; pr != nil {
		pr.answered = true
	}
}

// probe asks id for its state and decides after probeWait (loop only);
// announce: this node lost its link to id and tells the others if id
// stays silent.
func (mc *Plane) probe(id nodeid.ID, announce bool) {
	if pr := mc.probes.active[id]; pr != nil {
		pr.announce = pr.announce || announce
		return
	}
	if len(mc.probes.active) >= maxProbes {
		mc.probes.ignored.Add(1)
		mc.probes.log.Log("node", id.Short())
		return
	}
	mc.probes.active[id] = &probe{announce: announce}
	mc.send(id, &topology.Message{Kind: topology.KindSync})
	time.AfterFunc(probeWait, func() { mc.loop.Post(func() { mc.probed(id) }) })
}

// probed ends the probe of id.
func (mc *Plane) probed(id nodeid.ID) {
	pr := mc.probes.active[id]
	delete(mc.probes.active, id)
	if pr == nil || pr.answered {
		return
	}
	mc.log.Info("node gone: its memberships and hosts are forgotten", "node", id.Short(), "told_others", pr.announce)
	if mc.table.Remove(id) {
		mc.publish()
	}
	mc.treesGone(id)
	if mc.cfg.OnGone != nil {
		mc.cfg.OnGone(id)
	}
	if pr.announce {
		mc.cfg.Data.BroadcastControl(append([]byte{dataplane.KindGone}, id[:]...))
	}
}

// onGone takes a notice that a node seems gone (a reader goroutine).
func (mc *Plane) onGone(from nodeid.ID, payload []byte, _ bool) error {
	if len(payload) != 1+len(nodeid.ID{}) {
		return fmt.Errorf("mcast: gone notice of %d bytes", len(payload))
	}
	id := nodeid.ID(payload[1:])
	mc.loop.Post(func() {
		now := time.Now()
		last, seen := mc.probes.last[id]
		switch {
		case id.IsZero() || id == from || id == mc.cfg.Self:
		case seen && now.Sub(last) < probeEvery, mc.probes.active[id] != nil:
			// Asked lately, or being asked: not news (counted below).
		case !mc.probes.notices.Allow() || len(mc.probes.last) >= maxProbes && !seen:
			mc.probes.ignored.Add(1)
			mc.probes.log.Log("from", from.Short(), "node", id.Short())
			return
		default:
			mc.probes.last[id] = now
			mc.sweepProbed(now)
			mc.probe(id, false)
			return
		}
		mc.probes.ignored.Add(1)
	})
	return nil
}

// sweepProbed forgets probes older than probeEvery once the record fills.
func (mc *Plane) sweepProbed(now time.Time) {
	if len(mc.probes.last) < maxProbes/2 {
		return
	}
	for id, t := range mc.probes.last {
		if now.Sub(t) >= probeEvery {
			delete(mc.probes.last, id)
		}
	}
}
