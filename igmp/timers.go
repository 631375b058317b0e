package igmp

import (
	"container/heap"
	"time"
)

// Group timers are found through a heap per family, not by looking at
// every group: with thousands of groups on a link each report would cost
// a scan (1.1 ms per report at 10,000 groups; BenchmarkReportManyGroups).
//
// The heap is lazy. Every change of a group's timers marks the group
// touched (markDirty, round, fire); sync pushes each touched group with
// its earliest deadline. An entry whose group has gone, or whose
// deadline is no longer the group's earliest, is stale and dropped when
// it comes to the top. So every group with a pending deadline has an
// entry that is right, and the top entry, once the stale ones are gone,
// is the earliest of all.

type timerEntry struct {
	at time.Time
	g  *group
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

// touch marks g's timers as changed.
func (f *family) touch(g *group) {
	f.r.nextValid = false
	if !g.touched {
		g.touched = true
		f.touched = append(f.touched, g)
	}
}

// sync pushes the touched groups' deadlines, and rebuilds the heap when
// stale entries have piled up.
func (f *family) sync() {
	for _, g := range f.touched {
		g.touched = false
		if d := g.earliest(); !d.IsZero() && !g.gone {
			heap.Push(&f.timers, timerEntry{d, g})
		}
	}
	clear(f.touched)
	f.touched = f.touched[:0]
	if len(f.timers) > 2*len(f.groups)+64 {
		f.timers = f.timers[:0]
		for _, g := range f.groups {
			if d := g.earliest(); !d.IsZero() {
				f.timers = append(f.timers, timerEntry{d, g})
			}
		}
		heap.Init(&f.timers)
	}
}

func (e timerEntry) stale() bool { return e.g.gone || !e.g.earliest().Equal(e.at) }

// groupsEarliest is the earliest deadline of any group; zero if none.
func (f *family) groupsEarliest() time.Time {
	f.sync()
	for len(f.timers) > 0 && f.timers[0].stale() {
		heap.Pop(&f.timers)
	}
	if len(f.timers) == 0 {
		return time.Time{}
	}
	return f.timers[0].at
}

// dueGroups returns the groups with a deadline at or before t, each
// once, taking their entries off the heap (firing touches them again).
func (f *family) dueGroups(t time.Time) []*group {
	f.sync()
	var due []*group
	for len(f.timers) > 0 && !f.timers[0].at.After(t) {
		e := heap.Pop(&f.timers).(timerEntry)
		if e.stale() || e.g.due {
			continue
		}
		e.g.due = true
		due = append(due, e.g)
	}
	for _, g := range due {
		g.due = false
	}
	return due
}
