package topology

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// On-demand links. The data path counts the bytes it sends toward each
// node; the control loop turns the counts into rates and decides:
//
//	TAP readers (any number, concurrently): OnDemand.Add(dst, len(frame))
//	control loop, every second or so:      OnDemand.Tick(now, ringLinks)
//	                                          ─► add, remove (for logs)
//	                                          ─► Ring.SetOnDemand(OnDemand.Links())
//
// Ring.Tick then connects the wanted links and closes the ones nobody
// wants, so the node's links are Desired ∪ OnDemand.Links() ∪ what peers
// want.
//
// The rate is the average over the last Window. A link is wanted once
// that reaches Threshold and released once it has stayed below for Idle:
// the two time scales (seconds to add, a minute to drop) are the
// hysteresis, so a flow that pauses keeps its link and a flow hovering
// about the threshold does not flap. A burst of Threshold×Window bits
// inside one window counts as much as a steady flow; that is at least
// 625 KB at 1 Mbit/s and 5 s, worth a direct link either way.

// DefaultOnDemandWindow is the window rates are averaged over.
const DefaultOnDemandWindow = 5 * time.Second

// OnDemandConfig is topology.on_demand.
type OnDemandConfig struct {
	Threshold int64         // bits/s: a link is wanted at or above (config.Rate's value)
	Idle      time.Duration // released after this long below Threshold
	MaxLinks  int           // at most this many on-demand links; 0 disables them
	Window    time.Duration // rate averaging window; 0 means DefaultOnDemandWindow
}

// OnDemand decides the on-demand links. Add is safe for concurrent use
// with everything; the other methods belong to the control loop.
type OnDemand struct {
	cfg  OnDemandConfig
	need float64 // bytes in a Window at Threshold

	// counters maps nodeid.ID → *atomic.Uint64, the bytes since the last
	// Tick. A sync.Map because keys are written once and then read by
	// every packet: a hit is a lock-free load and an atomic add.
	counters sync.Map

	dests  map[nodeid.ID]*odDest
	nlinks int

	// tree: links the multicast trees want (SetTreeLinks), any goroutine.
	tree atomic.Pointer[[]nodeid.ID]
}

// SetTreeLinks replaces the links the node's distribution trees want
// (Trees.AdoptedParents): wanted whatever the rate, beside the rate's
// own (the first MaxTreeLinks; OnDemandConfig.MaxLinks bounds the
// rate's only, the link manager's own cap bounds all links). Safe for
// concurrent use.
func (o *OnDemand) SetTreeLinks(ids []nodeid.ID) {
	ids = slices.Clone(ids[:min(len(ids), MaxTreeLinks)])
	slices.SortFunc(ids, nodeid.ID.Compare)
	o.tree.Store(&ids)
}

// TreeLinks returns the links SetTreeLinks last asked for, ascending.
func (o *OnDemand) TreeLinks() []nodeid.ID {
	if p := o.tree.Load(); p != nil {
		return *p
	}
	return nil
}

// odDest is the control loop's state for one destination.
type odDest struct {
	count   *atomic.Uint64
	samples []odSample // within the window, oldest first
	sum     uint64     // of samples
	linked  bool       // an on-demand link is wanted
	below   time.Time  // linked and under Threshold since; zero when above
}

type odSample struct {
	at    time.Time
	bytes uint64
}

// NewOnDemand returns an OnDemand with no traffic counted.
func NewOnDemand(cfg OnDemandConfig) *OnDemand {
	if cfg.Window <= 0 {
		cfg.Window = DefaultOnDemandWindow
	}
	return &OnDemand{
		cfg:   cfg,
		need:  float64(cfg.Threshold) * cfg.Window.Seconds() / 8,
		dests: make(map[nodeid.ID]*odDest),
	}
}

// Add counts n bytes sent toward node dst, directly or routed (count
// each copy of a multicast frame toward its node). Safe for concurrent
// use; it allocates only for a destination new since it was last idle.
func (o *OnDemand) Add(dst nodeid.ID, n int) {
	v, ok := o.counters.Load(dst)
	for {
		if !ok {
			v, _ = o.counters.LoadOrStore(dst, new(atomic.Uint64))
		}
		c := v.(*atomic.Uint64)
		old := c.Load()
		if old&odRetired == 0 {
			if c.CompareAndSwap(old, old+uint64(n)) {
				return
			}
			continue
		}
		// Tick retired this counter (idle for a window) and is about to
		// drop it, or has: drop it here too and start a fresh one, so
		// the bytes are not added to a counter nobody reads.
		o.counters.CompareAndDelete(dst, c)
		ok = false
	}
}

// odRetired marks a counter that Tick has taken out of use: Add never
// adds to it (a frame's bytes are far below 2^63, so the bit is free).
const odRetired = 1 << 63

// Tick takes the bytes counted since the last Tick as sent at now and
// returns the changes to the wanted on-demand links: add once the rate
// reaches Threshold (the fastest first while under MaxLinks), remove
// after Idle below it. ring lists the nodes the ring links anyway
// (Ring.Desired): they never take an on-demand slot, and an on-demand
// link to a node that becomes one is released. Call it at a steady
// interval well under Window (a second), since each call's bytes count
// as one sample.
func (o *OnDemand) Tick(now time.Time, ring []nodeid.ID) (add, remove []nodeid.ID) {
	o.counters.Range(func(k, v any) bool {
		if id := k.(nodeid.ID); o.dests[id] == nil {
			o.dests[id] = &odDest{count: v.(*atomic.Uint64)}
		}
		return true
	})
	var wait []nodeid.ID
	for id, d := range o.dests {
		d.sample(now, o.cfg.Window)
		structural := slices.Contains(ring, id)
		switch {
		case d.linked && structural:
			remove = append(remove, id)
		case d.linked && float64(d.sum) >= o.need:
			d.below = time.Time{}
		case d.linked && d.below.IsZero():
			d.below = now
		case d.linked && now.Sub(d.below) >= o.cfg.Idle:
			remove = append(remove, id)
		case !d.linked && !structural && d.sum > 0 && float64(d.sum) >= o.need:
			wait = append(wait, id)
		case !d.linked && d.sum == 0 && d.count.CompareAndSwap(0, odRetired):
			// Idle for a whole window: forget it. Retiring the counter
			// first (only while it is still 0) means an Add racing with
			// this starts a new one instead of losing its bytes.
			delete(o.dests, id)
			o.counters.CompareAndDelete(id, d.count)
		}
	}
	for _, id := range remove {
		o.dests[id].linked, o.dests[id].below = false, time.Time{}
		o.nlinks--
	}
	// The fastest first; ties by ID so the choice is deterministic.
	slices.SortFunc(wait, func(a, b nodeid.ID) int {
		return cmp.Or(cmp.Compare(o.dests[b].sum, o.dests[a].sum), a.Compare(b))
	})
	for _, id := range wait {
		if o.nlinks >= o.cfg.MaxLinks {
			break
		}
		o.dests[id].linked = true
		o.nlinks++
		add = append(add, id)
	}
	slices.SortFunc(remove, nodeid.ID.Compare)
	slices.SortFunc(add, nodeid.ID.Compare)
	return add, remove
}

// sample moves the bytes counted since the last Tick into the window and
// drops the samples that fell out of it.
func (d *odDest) sample(now time.Time, window time.Duration) {
	if b := d.count.Swap(0); b > 0 {
		d.samples = append(d.samples, odSample{now, b})
		d.sum += b
	}
	i := 0
	for i < len(d.samples) && now.Sub(d.samples[i].at) >= window {
		d.sum -= d.samples[i].bytes
		i++
	}
	d.samples = append(d.samples[:0], d.samples[i:]...)
}

// Links returns the on-demand links wanted for their rate, ascending
// (the trees' are TreeLinks).
func (o *OnDemand) Links() []nodeid.ID {
	var ids []nodeid.ID
	for id, d := range o.dests {
		if d.linked {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, nodeid.ID.Compare)
	return ids
}

// Rate returns the rate toward dst in bits/s, averaged over the window
// as of the last Tick (for status and metrics).
func (o *OnDemand) Rate(dst nodeid.ID) int64 {
	if d := o.dests[dst]; d != nil {
		return int64(float64(d.sum) * 8 / o.cfg.Window.Seconds())
	}
	return 0
}

// Forget drops all state of dst, which has left the overlay, and reports
// whether it had a wanted on-demand link.
func (o *OnDemand) Forget(dst nodeid.ID) bool {
	d := o.dests[dst]
	delete(o.dests, dst)
	if v, ok := o.counters.Load(dst); ok {
		v.(*atomic.Uint64).Store(odRetired)
		o.counters.CompareAndDelete(dst, v)
	}
	if d != nil && d.linked {
		o.nlinks--
		return true
	}
	return false
}

// Config returns the configuration in use, defaults filled in.
func (o *OnDemand) Config() OnDemandConfig { return o.cfg }
