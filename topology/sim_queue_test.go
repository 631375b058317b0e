package topology

import (
	"container/heap"
	"time"
)

// The event queue: a heap by time, then by order of scheduling, so a run
// is a function of the seed.
type simEvent struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *sim) after(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, simEvent{at: s.now + d, seq: s.seq, fn: fn})
}

// run processes events up to and including time until.
func (s *sim) run(until time.Duration) {
	for len(s.q) > 0 && s.q[0].at <= until {
		e := heap.Pop(&s.q).(simEvent)
		s.now = e.at
		e.fn()
	}
	s.now = until
}
