package topology

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

var epoch0 = time.Unix(1_700_000_000, 0)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ip(s))
	}
	return out
}

func incl(ss ...string) filter.Filter {
	return filter.Filter{Mode: filter.Include, Sources: ips(ss...)}
}
func excl(ss ...string) filter.Filter {
	return filter.Filter{Mode: filter.Exclude, Sources: ips(ss...)}
}

func nodeID(n byte) nodeid.ID { return nodeid.ID{0: n, 31: ^n} }

// viewState flattens a View through its public methods: node → group →
// subscription. Tests compare it with what the model expects.
func viewState(t testing.TB, v *View) map[nodeid.ID]map[netip.Addr]Subscription {
	t.Helper()
	out := make(map[nodeid.ID]map[netip.Addr]Subscription)
	groups := v.Groups()
	if !slices.IsSortedFunc(groups, netip.Addr.Compare) || len(groups) != v.Len() {
		t.Fatalf("Groups %v: unsorted or not Len %d", groups, v.Len())
	}
	for _, g := range groups {
		subs := v.Nodes(g)
		if len(subs) == 0 {
			t.Fatalf("group %v listed without subscribers", g)
		}
		for i, s := range subs {
			if i > 0 && string(subs[i-1].Node[:]) >= string(s.Node[:]) {
				t.Fatalf("group %v: Nodes not in strict node ID order", g)
			}
			if out[s.Node] == nil {
				out[s.Node] = make(map[netip.Addr]Subscription)
			}
			out[s.Node][g] = s
		}
	}
	return out
}

// mustRoundTrip encodes m and decodes it again, as the link would.
func mustRoundTrip(t testing.TB, m *Message) *Message {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %+v: %v", m, err)
	}
	if len(b) != m.Size() {
		t.Fatalf("Size %d, encoded %d bytes", m.Size(), len(b))
	}
	var out Message
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatalf("unmarshal % x: %v", b, err)
	}
	return &out
}

func messagesEqual(a, b *Message) bool {
	return a.Kind == b.Kind && a.Epoch == b.Epoch && a.Seq == b.Seq && a.Refresh == b.Refresh && a.Part == b.Part && a.Parts == b.Parts &&
		slices.EqualFunc(a.Groups, b.Groups, func(x, y Group) bool {
			return x.Addr == y.Addr && x.Filter.Equal(y.Filter)
		})
}
