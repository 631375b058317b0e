// Package taskloop is the serial loop that control-plane state machines run
// on (link control, the multicast plane, the neighbour plane): every change
// of their state happens in a task on one goroutine, so that state needs no
// locks. Other goroutines (readers, pion callbacks, the control API) hand
// work in with Post, or Call when they need an answer. As pion's
// internal/taskloop, but the owner keeps its own select, because each loop
// also waits on its own timers and channels:
//
//	defer loop.Close()
//	for {
//		select {
//		case f := <-loop.Tasks():
//			f()
//		case <-ticker.C:
//			...
//		}
//	}
package taskloop

import "sync"

// Loop queues tasks for one goroutine. The zero Loop is not usable; New
// makes one. After Close, Post drops tasks and Call returns false at once,
// so a late caller (a reader of a closing link) never blocks.
type Loop struct {
	tasks chan func()
	done  chan struct{}
	once  sync.Once
}

// New returns a loop whose queue holds size tasks; Post blocks while it is
// full (back-pressure on the callers, never a lost state change).
func New(size int) *Loop {
	return &Loop{tasks: make(chan func(), size), done: make(chan struct{})}
}

// Tasks is the queue the owner's select receives from; it runs each task
// it gets.
func (l *Loop) Tasks() <-chan func() { return l.tasks }

// Done is closed once the owner has stopped (Close).
func (l *Loop) Done() <-chan struct{} { return l.done }

// Close says the owner stopped reading Tasks. It is idempotent.
func (l *Loop) Close() { l.once.Do(func() { close(l.done) }) }

// Post queues f for the loop; it reports false (and f never runs) when the
// loop has stopped.
func (l *Loop) Post(f func()) bool { return l.post(f, true) }

// TryPost queues f for the loop unless its queue is full or it has
// stopped; it never blocks (for callers that must not wait, such as
// packet readers) and reports whether f was queued.
func (l *Loop) TryPost(f func()) bool { return l.post(f, false) }

// post queues f unless the loop stopped, waiting for room if wait.
func (l *Loop) post(f func(), wait bool) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	if !wait {
		select {
		case l.tasks <- f:
			return true
		default:
			return false
		}
	}
	select {
	case l.tasks <- f:
		return true
	case <-l.done:
		return false
	}
}

// Call runs f on the loop and waits until it has run; it reports false
// when the loop stopped first, in which case f has not run and never will
// start. A Call from the loop itself would deadlock: tasks call functions
// directly.
func (l *Loop) Call(f func()) bool {
	ran := make(chan struct{})
	if !l.Post(func() { f(); close(ran) }) {
		return false
	}
	select {
	case <-ran:
		return true
	case <-l.done:
		// The loop stopped; it may have run f just before. Say so only
		// if it did, so that callers never read what f did not write.
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}
}
