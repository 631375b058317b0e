package topology

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

// apply feeds m through the wire to tb and checks both results.
func apply(t *testing.T, tb *Table, from nodeid.ID, m *Message, now time.Time, changed, needSync bool) {
	t.Helper()
	c, s := tb.Apply(from, mustRoundTrip(t, m), now)
	if c != changed || s != needSync {
		t.Fatalf("Apply(%v seq %d) = changed %v, needSync %v; want %v, %v", m.Kind, m.Seq, c, s, changed, needSync)
	}
}

// filtersOf is node's state as the view shows it.
func filtersOf(t *testing.T, v *View, node nodeid.ID) map[netip.Addr]filter.Filter {
	out := make(map[netip.Addr]filter.Filter)
	for g, s := range viewState(t, v)[node] {
		out[g] = s.Filter
	}
	return out
}

func TestTableOrdering(t *testing.T) {
	a, tb, n, now := NewAdvertiser(5), NewTable(), nodeID(1), epoch0
	a.Set(ip("239.0.0.1"), excl())
	apply(t, tb, n, a.Full(), now, true, false)
	d2, _ := a.Set(ip("239.0.0.2"), excl())
	d3, _ := a.Set(ip("239.0.0.3"), excl())
	d4, _ := a.Set(ip("239.0.0.1"), incl())
	stale := a.Full() // at seq 4
	apply(t, tb, n, d2, now, true, false)
	apply(t, tb, n, d2, now, false, false) // duplicate
	// d3 lost: d4 is a gap. The state stays at seq 2 until a full arrives.
	apply(t, tb, n, d4, now, false, true)
	if got := filtersOf(t, tb.View(), n); len(got) != 2 {
		t.Fatalf("state after a gap: %v, want the two groups of seq 2", got)
	}
	if s := tb.Sync(n); s.Kind != KindSync || s.Epoch != 5 || s.Seq != 2 {
		t.Fatalf("Sync = %+v", s)
	}
	// More gaps within SyncRetry ask nothing more; after it, ask again.
	apply(t, tb, n, d4, now.Add(SyncRetry/2), false, false)
	apply(t, tb, n, d4, now.Add(SyncRetry), false, true)
	now = now.Add(SyncRetry)
	apply(t, tb, n, d3, now, true, false) // d3 arrives late after all: in order
	d5, _ := a.Set(ip("239.0.0.5"), excl())
	now = now.Add(SyncRetry)
	apply(t, tb, n, d5, now, false, true) // d4 still missing
	apply(t, tb, n, a.Full(), now, true, false)
	if got, want := filtersOf(t, tb.View(), n), a.Groups(); len(got) != len(want) || len(got) != 3 {
		t.Fatalf("after full: %v, want %v", got, want)
	}
	apply(t, tb, n, stale, now, false, false) // an older full, reordered
	apply(t, tb, n, d4, now, false, false)    // a delta already covered
	if got := filtersOf(t, tb.View(), n); len(got) != 3 {
		t.Fatalf("stale messages changed the state: %v", got)
	}
	// Once a full arrived, the next gap asks at once.
	a.Set(ip("239.0.0.6"), excl())
	d7, _ := a.Set(ip("239.0.0.7"), excl())
	apply(t, tb, n, d7, now, false, true)
}

func TestTableEpoch(t *testing.T) {
	tb, n := NewTable(), nodeID(1)
	old := NewAdvertiser(1)
	old.Set(ip("239.0.0.1"), excl())
	apply(t, tb, n, old.Full(), epoch0, true, false)
	// The node restarts: its first delta has Seq 1 under a new epoch.
	restarted := NewAdvertiser(2)
	d, _ := restarted.Set(ip("239.0.0.2"), excl())
	apply(t, tb, n, d, epoch0, false, true)
	if got := filtersOf(t, tb.View(), n); len(got) != 1 {
		t.Fatalf("old state should stay until the new full: %v", got)
	}
	apply(t, tb, n, restarted.Full(), epoch0, true, false)
	if got := filtersOf(t, tb.View(), n); len(got) != 1 || !got[ip("239.0.0.2")].Equal(excl()) {
		t.Fatalf("after the new full: %v", got)
	}
	// A delta from a node never heard in full also asks for one.
	other := NewAdvertiser(3)
	d, _ = other.Set(ip("239.0.0.3"), excl())
	apply(t, tb, nodeID(2), d, epoch0, false, true)
	if s := tb.Sync(nodeID(2)); s.Epoch != 0 || s.Seq != 0 {
		t.Fatalf("Sync for an unsynced node: %+v", s)
	}
}

func TestTableSince(t *testing.T) {
	a, tb, n := NewAdvertiser(1), NewTable(), nodeID(1)
	g := ip("232.1.1.1")
	since := func() time.Time { return tb.View().Nodes(g)[0].Since }
	d, _ := a.Set(g, incl("10.0.0.1"))
	apply(t, tb, n, a.Full(), epoch0, true, false)
	apply(t, tb, n, d, epoch0.Add(time.Second), false, false) // already in the full
	// A filter change keeps the join time, through a delta or a full.
	d, _ = a.Set(g, incl("10.0.0.1", "10.0.0.2"))
	apply(t, tb, n, d, epoch0.Add(2*time.Second), true, false)
	a.Set(g, excl())
	apply(t, tb, n, a.Full(), epoch0.Add(3*time.Second), true, false)
	if !since().Equal(epoch0) {
		t.Fatalf("Since %v, want the join at %v", since(), epoch0)
	}
	d, _ = a.Set(g, incl())
	apply(t, tb, n, d, epoch0.Add(4*time.Second), true, false)
	d, _ = a.Set(g, excl())
	apply(t, tb, n, d, epoch0.Add(5*time.Second), true, false)
	if !since().Equal(epoch0.Add(5 * time.Second)) {
		t.Fatalf("Since %v after leaving and joining again", since())
	}
}

func TestTableExpireRemove(t *testing.T) {
	tb := NewTable()
	a := NewAdvertiser(1)
	a.SetRefresh(10 * time.Second)
	a.Set(ip("239.0.0.1"), excl())
	apply(t, tb, nodeID(1), a.Full(), epoch0, true, false)
	apply(t, tb, nodeID(2), a.Full(), epoch0, true, false)
	// Hearing anything, even a stale message, keeps a node alive.
	apply(t, tb, nodeID(2), a.Full(), epoch0.Add(20*time.Second), false, false)
	if tb.Expire(epoch0.Add(30*time.Second - 1)) {
		t.Fatal("expired before 3× refresh")
	}
	if !tb.Expire(epoch0.Add(30 * time.Second)) {
		t.Fatal("not expired at 3× refresh")
	}
	if got := viewState(t, tb.View()); len(got) != 1 || got[nodeID(2)] == nil {
		t.Fatalf("after expiry: %v", got)
	}
	if !tb.Remove(nodeID(2)) || tb.Remove(nodeID(2)) || tb.View().Len() != 0 {
		t.Fatal("Remove")
	}
	// A node with nothing to show goes without changing the view.
	d, _ := NewAdvertiser(9).Set(ip("239.0.0.9"), excl())
	apply(t, tb, nodeID(3), d, epoch0, false, true)
	if tb.Expire(epoch0.Add(3 * DefaultRefresh)) {
		t.Fatal("expiring a node without groups changed the view")
	}
	if _, sync := tb.Apply(nodeID(3), d, epoch0.Add(3*DefaultRefresh)); !sync {
		t.Fatal("an expired node was not forgotten")
	}
}

func TestTableView(t *testing.T) {
	a, tb, n := NewAdvertiser(1), NewTable(), nodeID(1)
	a.Set(ip("239.0.0.1"), incl("10.0.0.1"))
	apply(t, tb, n, a.Full(), epoch0, true, false)
	v1 := tb.View()
	apply(t, tb, n, a.Full(), epoch0, false, false)
	if tb.View() != v1 {
		t.Fatal("a refresh without change rebuilt the view")
	}
	d, _ := a.Set(ip("239.0.0.1"), incl("10.0.0.2"))
	apply(t, tb, n, d, epoch0, true, false)
	if tb.View() == v1 || v1.Targets(ip("239.0.0.1"), ip("10.0.0.1"), nil) == nil {
		t.Fatal("an old view must stay as it was")
	}
	// The table keeps copies: a reused message changes nothing.
	m := a.Full()
	tb.Apply(nodeID(2), m, epoch0)
	m.Groups[0].Filter.Sources[0] = ip("10.0.0.9")
	if got := filtersOf(t, tb.View(), nodeID(2)); !got[ip("239.0.0.1")].Equal(incl("10.0.0.2")) {
		t.Fatalf("state aliases the message: %v", got)
	}
}

func TestTableIgnores(t *testing.T) {
	tb := NewTable()
	for _, m := range []*Message{
		{Kind: KindSync},
		{Kind: KindFull, Refresh: time.Second, Groups: []Group{{ip("239.0.0.1"), excl("10.0.0.2", "10.0.0.1")}}},
		{Kind: KindFull, Refresh: 0},
	} {
		if c, s := tb.Apply(nodeID(1), m, epoch0); c || s {
			t.Errorf("Apply(%+v) = %v, %v", m, c, s)
		}
	}
	if len(tb.nodes) != 0 {
		t.Error("an ignored message created a node")
	}
}

// A state in parts is taken once every part is in, in whatever order
// they come; parts of another state start it over; a state whose parts
// are not in address order is refused whole.
func TestTableParts(t *testing.T) {
	a, tb, n, now := NewAdvertiser(5), NewTable(), nodeID(1), epoch0
	for i := range 3000 {
		a.Set(netip.AddrFrom4([4]byte{239, 3, byte(i >> 8), byte(i)}), excl())
	}
	parts := a.FullParts(1200)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	// Backwards, with a duplicate and a part of an older state between.
	old := parts[0]
	for i := len(parts) - 1; i > 0; i-- {
		apply(t, tb, n, parts[i], now, false, false)
	}
	apply(t, tb, n, parts[1], now, false, false)
	if tb.View().Len() != 0 {
		t.Fatal("a state taken before its last part")
	}
	apply(t, tb, n, old, now, true, false)
	if got := filtersOf(t, tb.View(), n); len(got) != 3000 {
		t.Fatalf("%d groups, want 3000", len(got))
	}
	// A delta on top applies; the same state in parts again changes nothing.
	d, _ := a.Set(ip("239.9.9.9"), excl())
	apply(t, tb, n, d, now, true, false)
	for _, p := range a.FullParts(1200) {
		apply(t, tb, n, p, now, false, false)
	}
	// A new state's parts interrupted by another's: only a whole one is
	// taken.
	a.Set(ip("239.9.9.10"), excl())
	p1 := a.FullParts(1200)
	a.Set(ip("239.9.9.11"), excl())
	p2 := a.FullParts(1200)
	apply(t, tb, n, p1[0], now, false, false)
	for i, p := range p2 {
		apply(t, tb, n, p, now, i == len(p2)-1, false)
	}
	if got := filtersOf(t, tb.View(), n); len(got) != 3003 {
		t.Fatalf("%d groups, want 3003", len(got))
	}
	// Parts whose groups overlap: refused, the state held stays.
	bad := []*Message{
		{Kind: KindPart, Epoch: 5, Seq: 1 << 40, Refresh: time.Second, Part: 0, Parts: 2, Groups: []Group{{ip("239.0.0.5"), excl()}}},
		{Kind: KindPart, Epoch: 5, Seq: 1 << 40, Refresh: time.Second, Part: 1, Parts: 2, Groups: []Group{{ip("239.0.0.1"), excl()}}},
	}
	apply(t, tb, n, bad[0], now, false, false)
	apply(t, tb, n, bad[1], now, false, false)
	if tb.BadParts() != 1 || len(filtersOf(t, tb.View(), n)) != 3003 {
		t.Fatalf("bad parts %d, %d groups held", tb.BadParts(), len(filtersOf(t, tb.View(), n)))
	}
	tb.Remove(n)
	if tb.entries != 0 {
		t.Fatalf("entries %d after the only node went", tb.entries)
	}
}

// A node's state is bounded (MaxNodeGroups, MaxNodeEntries) whatever it
// sends, and all nodes' together (MaxTableEntries); parts waiting count.
func TestTableBounds(t *testing.T) {
	tb, now := NewTable(), epoch0
	// One part too many groups: 17 parts of 1000 groups is over 16384.
	for i := range 17 {
		m := &Message{Kind: KindPart, Epoch: 1, Seq: 1, Refresh: time.Second, Part: i, Parts: 20}
		for j := range 1000 {
			k := i*1000 + j
			m.Groups = append(m.Groups, Group{netip.AddrFrom4([4]byte{239, byte(k >> 16), byte(k >> 8), byte(k)}), excl()})
		}
		tb.Apply(nodeID(1), m, now)
	}
	if tb.Oversize() != 1 || tb.entries != 0 {
		t.Fatalf("oversize %d, entries %d: the parts of a state beyond MaxNodeGroups kept", tb.Oversize(), tb.entries)
	}
	// Deltas that grow a node beyond: its state goes.
	a := NewAdvertiser(2)
	a.Set(ip("239.0.0.1"), excl())
	tb.Apply(nodeID(2), a.Full(), now)
	for i := range MaxNodeGroups {
		tb.Apply(nodeID(2), &Message{Kind: KindDelta, Epoch: 2, Seq: uint64(i + 2), Refresh: time.Second,
			Groups: []Group{{netip.AddrFrom4([4]byte{239, 5, byte(i >> 8), byte(i)}), excl()}}}, now)
	}
	if tb.Oversize() != 2 || tb.View().Len() != 0 || tb.entries != 0 {
		t.Fatalf("oversize %d, view %d groups, entries %d after deltas beyond MaxNodeGroups", tb.Oversize(), tb.View().Len(), tb.entries)
	}
	// All nodes together: full states of 1024 groups of 63 sources (64
	// entries each) until the table is full.
	f := incl()
	for i := range 63 {
		f.Sources = append(f.Sources, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	full := &Message{Kind: KindFull, Epoch: 3, Refresh: time.Second}
	for i := range MaxGroups {
		full.Groups = append(full.Groups, Group{netip.AddrFrom4([4]byte{232, 0, byte(i >> 8), byte(i)}), f})
	}
	per := MaxGroups * 64
	for i := range MaxTableEntries/per + 1 {
		tb.Apply(nodeID(byte(10+i)), full, now)
	}
	if tb.Refused() != 1 || tb.entries != MaxTableEntries/per*per {
		t.Fatalf("refused %d, entries %d, want 1 and %d", tb.Refused(), tb.entries, MaxTableEntries/per*per)
	}
}

// A node in 10,000 groups, IPv4 and IPv6, some source-specific, is fully
// known from its state in parts, whatever order they arrive in.
func TestTableTenThousandGroups(t *testing.T) {
	a, tb := NewAdvertiser(9), NewTable()
	want := map[netip.Addr]filter.Filter{}
	for i := range 10000 {
		g, f := netip.AddrFrom4([4]byte{239, 30, byte(i >> 8), byte(i)}), excl()
		switch i % 4 {
		case 1:
			g = netip.AddrFrom16([16]byte{0xff, 0x3e, 14: byte(i >> 8), 15: byte(i)})
			f = incl("fd00::1", "fd00::2")
		case 2:
			g, f = netip.AddrFrom4([4]byte{232, 30, byte(i >> 8), byte(i)}), incl("10.1.2.3")
		}
		if _, changed := a.Set(g, f); !changed {
			t.Fatalf("group %d (%s) refused", i, g)
		}
		want[g] = f
	}
	parts := a.FullParts(1100)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	for i, p := range parts {
		apply(t, tb, nodeID(1), p, epoch0, i == len(parts)-1, false)
	}
	got := filtersOf(t, tb.View(), nodeID(1))
	if len(got) != len(want) {
		t.Fatalf("%d groups known, want %d", len(got), len(want))
	}
	for g, f := range want {
		if !got[g].Equal(f) {
			t.Fatalf("%s: %v, want %v", g, got[g], f)
		}
	}
	t.Logf("10,000 groups in %d parts", len(parts))
}
