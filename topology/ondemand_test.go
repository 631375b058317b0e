package topology

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// On-demand policy as tables on a fake clock. Threshold 8 kbit/s is 1000
// bytes/s, so a 5 s window needs 5000 bytes; Idle is 10 s; 2 links at
// most. Flows send their bytes each second before that second's Tick.

var odTestConfig = OnDemandConfig{Threshold: 8000, Idle: 10 * time.Second, MaxLinks: 2, Window: 5 * time.Second}

type odFlow struct {
	id       nodeid.ID
	from, to int // seconds, inclusive
	bytes    int // per second
}

type odEvent struct {
	at  int
	add bool
	id  nodeid.ID
}

func (e odEvent) String() string {
	op := "remove"
	if e.add {
		op = "add"
	}
	return fmt.Sprintf("%ds %s %s", e.at, op, e.id.Short())
}

func TestOnDemand(t *testing.T) {
	a, b, c := nodeID(1), nodeID(2), nodeID(3)
	tests := []struct {
		name  string
		flows []odFlow
		ring  func(sec int) []nodeid.ID // the ring's own links at each second
		want  []odEvent
	}{
		{name: "steady above: added once the window holds enough",
			flows: []odFlow{{a, 1, 40, 2000}}, want: []odEvent{{3, true, a}}},
		{name: "steady below: never",
			flows: []odFlow{{a, 1, 40, 900}}},
		{name: "one burst of a window's worth: added at once, removed Idle after it left the window",
			flows: []odFlow{{a, 1, 1, 5000}}, want: []odEvent{{1, true, a}, {16, false, a}}},
		{name: "a pause shorter than Idle keeps the link",
			flows: []odFlow{{a, 1, 10, 2000}, {a, 18, 40, 2000}}, want: []odEvent{{3, true, a}}},
		{name: "stopped: removed Idle after falling below",
			flows: []odFlow{{a, 1, 10, 2000}}, want: []odEvent{{3, true, a}, {23, false, a}}},
		{name: "over MaxLinks the fastest win; a freed slot goes to the next",
			flows: []odFlow{{a, 1, 40, 3000}, {b, 1, 40, 2000}, {c, 1, 10, 4000}},
			want:  []odEvent{{2, true, a}, {2, true, c}, {24, false, c}, {24, true, b}}},
		{name: "a ring link takes no slot, and releases one",
			flows: []odFlow{{a, 1, 40, 2000}},
			ring: func(sec int) []nodeid.ID {
				if sec < 10 || sec >= 20 {
					return []nodeid.ID{a}
				}
				return nil
			},
			want: []odEvent{{10, true, a}, {20, false, a}}},
	}
	for _, tc := range tests {
		o := NewOnDemand(odTestConfig)
		var got []odEvent
		for sec := 1; sec <= 40; sec++ {
			for _, f := range tc.flows {
				if sec >= f.from && sec <= f.to {
					o.Add(f.id, f.bytes)
				}
			}
			var ring []nodeid.ID
			if tc.ring != nil {
				ring = tc.ring(sec)
			}
			add, remove := o.Tick(epoch0.Add(time.Duration(sec)*time.Second), ring)
			for _, id := range remove {
				got = append(got, odEvent{sec, false, id})
			}
			for _, id := range add {
				got = append(got, odEvent{sec, true, id})
			}
			if len(o.Links()) > odTestConfig.MaxLinks {
				t.Fatalf("%s: %d links at %ds", tc.name, len(o.Links()), sec)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
}

func TestOnDemandRateForgetPrune(t *testing.T) {
	o := NewOnDemand(odTestConfig)
	a := nodeID(1)
	now := epoch0
	for range 5 {
		now = now.Add(time.Second)
		o.Add(a, 2000)
		o.Tick(now, nil)
	}
	if r := o.Rate(a); r != 16000 || !slices.Equal(o.Links(), []nodeid.ID{a}) {
		t.Fatalf("rate %d, links %v; want 16000 bit/s and a link", r, shorts(o.Links()))
	}
	if !o.Forget(a) || len(o.Links()) != 0 || o.Rate(a) != 0 || o.Forget(a) {
		t.Fatal("Forget must drop the link and the state once")
	}
	// An idle destination without a link is forgotten after a window.
	o.Add(a, 10)
	o.Tick(now.Add(time.Second), nil)
	o.Tick(now.Add(7*time.Second), nil)
	if len(o.dests) != 0 {
		t.Fatalf("%d destinations kept after a window of silence", len(o.dests))
	}
	if _, ok := o.counters.Load(a); ok {
		t.Fatal("the idle destination's counter is kept")
	}
}

// Add is called by every TAP reader at once while the control loop
// ticks; no byte may be lost (nothing is idle long enough to be pruned).
func TestOnDemandConcurrentAdd(t *testing.T) {
	o := NewOnDemand(OnDemandConfig{Threshold: 1 << 40, Idle: time.Minute, MaxLinks: 1, Window: 8 * time.Second})
	dsts := ids(1, 2, 3)
	const readers, adds = 4, 5000
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for i := range adds {
				o.Add(dsts[(r+i)%len(dsts)], 100)
			}
		})
	}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case <-stop:
				return
			default:
				o.Tick(epoch0, nil) // one instant: nothing leaves the window
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-ticked
	o.Tick(epoch0, nil)
	var total int64
	for _, d := range dsts {
		total += o.Rate(d) // 8 s window: bits/s × 8 s / 8 = bytes
	}
	if total != readers*adds*100 {
		t.Fatalf("counted %d bytes, sent %d", total, readers*adds*100)
	}
}

func TestOnDemandAddAllocs(t *testing.T) {
	o := NewOnDemand(odTestConfig)
	a := nodeID(1)
	o.Add(a, 1)
	if n := testing.AllocsPerRun(1000, func() { o.Add(a, 1400) }); n != 0 {
		t.Fatalf("Add allocates %v times per frame", n)
	}
}

// TestOnDemandTreeLinks: the trees' links are kept apart from the
// rate's, at most MaxTreeLinks, ascending.
func TestOnDemandTreeLinks(t *testing.T) {
	o := NewOnDemand(OnDemandConfig{Threshold: 1 << 20, Idle: time.Minute, MaxLinks: 1})
	if got := o.TreeLinks(); len(got) != 0 {
		t.Fatalf("tree links at first: %v", got)
	}
	var ids []nodeid.ID
	for i := range MaxTreeLinks + 3 {
		ids = append(ids, nodeid.ID{byte(100 - i)})
	}
	o.SetTreeLinks(ids)
	got := o.TreeLinks()
	first := slices.Clone(ids[:MaxTreeLinks])
	slices.SortFunc(first, nodeid.ID.Compare)
	if !slices.Equal(got, first) || len(o.Links()) != 0 {
		t.Fatalf("tree links %v (rate links %v): want the first %d, ascending, and no rate links", got, o.Links(), MaxTreeLinks)
	}
	o.SetTreeLinks(nil)
	if got := o.TreeLinks(); len(got) != 0 {
		t.Fatalf("tree links after none wanted: %v", got)
	}
}
