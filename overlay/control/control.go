// Package control is ipopd's local control API: HTTP with JSON bodies over a
// unix socket (config key control.socket). ipopd serves it; ipopctl is its
// client. Access is the socket's file mode: only root and the socket's group
// may connect.
//
// Endpoints (all GET, JSON):
//
//	/v1/status   Status
package control

import (
	"errors"
	"net/url"
	"time"
)

// ErrNotRunning means nothing listens on the control socket.
var ErrNotRunning = errors.New("control: ipopd is not running (no control socket)")

// ErrInUse means a live ipopd already serves the socket.
var ErrInUse = errors.New("control: socket is in use by a running ipopd")

// Status is the node's identity and TAP, as `ipopctl status` shows it.
type Status struct {
	Name         string    `json:"name"`
	NodeID       string    `json:"node_id"`
	Network      string    `json:"network"`
	Version      string    `json:"version"`
	Started      time.Time `json:"started"`
	Uptime       Duration  `json:"uptime"`
	CertNotAfter time.Time `json:"cert_not_after"`
	TAP          TAPStatus `json:"tap"`
	// Ring is this node's place in the overlay ring (nil before the link
	// manager runs).
	Ring *RingStatus `json:"ring,omitempty"`
}

// RingStatus is the node's view of the ring: the neighbours it keeps
// links to for the ring's sake, the on-demand links it wants, and how
// many nodes it knows.
type RingStatus struct {
	Successors  []RingNode `json:"successors"`  // clockwise, nearest first
	Predecessor *RingNode  `json:"predecessor"` // nearest counter-clockwise
	Chords      []RingNode `json:"chords"`
	OnDemand    []RingNode `json:"on_demand"` // wanted for traffic, with the rate
	Known       int        `json:"known"`     // nodes known, self excluded
	Links       int        `json:"links"`     // links up
}

// RingNode is a node named in RingStatus. Up says whether a link to it is
// up; RateBits is the traffic toward it (bits/s, on-demand entries only).
type RingNode struct {
	Name     string `json:"name"`
	NodeID   string `json:"node_id"`
	Up       bool   `json:"up"`
	RateBits int64  `json:"rate_bits,omitempty"`
	// Since: when the on-demand link was wanted (on-demand entries only).
	Since time.Time `json:"since,omitzero"`
}

// TAPStatus describes the TAP and what its reader has seen.
type TAPStatus struct {
	Name      string   `json:"name"`
	Mode      string   `json:"mode"`
	MAC       string   `json:"mac"`
	MTU       int      `json:"mtu"`
	Addresses []string `json:"addresses"`
	Bridge    string   `json:"bridge,omitempty"`
	// RxFrames counts frames read from the TAP by class (igmp, mld, arp,
	// ndp, broadcast, multicast, unicast, invalid).
	RxFrames map[string]uint64 `json:"rx_frames"`
	RxBytes  uint64            `json:"rx_bytes"`
	TxFrames uint64            `json:"tx_frames"`
	TxBytes  uint64            `json:"tx_bytes"`
	Dropped  uint64            `json:"dropped"`
}

// Duration marshals as a Go duration string ("1h2m3s"), readable in JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Peers is `ipopctl peers`: the node's links and its drop counters.
type Peers struct {
	Links []PeerStatus `json:"links"`
	// Rendezvous is the signaling server in use ("" when disconnected).
	Rendezvous string `json:"rendezvous"`
	// Drops counts packets dropped before reaching a link, by reason.
	Drops map[string]uint64 `json:"drops"`
	// Routed counts packets that travelled through the ring rather than
	// over a direct link: sent (from here), forwarded (for others),
	// delivered (here).
	Routed map[string]uint64 `json:"routed"`
	MACs   int               `json:"macs"`
}

// PeerStatus is one link.
type PeerStatus struct {
	Name   string `json:"name"`
	NodeID string `json:"node_id"`
	State  string `json:"state"` // connecting, handshake, up, down
	// Role is why the link exists: successor, chord, on-demand, tree (to
	// a parent on a group's tree that is not the ring's next hop), or
	// peer (kept because the other node wants it).
	Role      string   `json:"role"`
	Path      string   `json:"path"` // host, srflx, relay ("" before ICE picks)
	Local     string   `json:"local"`
	Remote    string   `json:"remote"`
	RTT       Duration `json:"rtt"`
	Initiator bool     `json:"initiator"`
	TxPackets uint64   `json:"tx_packets"`
	TxBytes   uint64   `json:"tx_bytes"`
	RxPackets uint64   `json:"rx_packets"`
	RxBytes   uint64   `json:"rx_bytes"`
	Dropped   uint64   `json:"dropped"`
	Age       Duration `json:"age"`              // since the link came up (or since set-up started)
	Reason    string   `json:"reason,omitempty"` // why it is down
	// Via is the linked node that frames for this peer go through while
	// the link is not up (routed by the ring, or relayed by a node that
	// links it); "" when the link is up or nothing reaches the peer.
	Via string `json:"via,omitempty"`
	// ProbesLost is how many of the last 16 probes of the link went
	// unanswered (-1: not measured: the link carried nothing lately),
	// ProbeRTT their smoothed round trip; RoutedAround says why frames
	// for other nodes go around this peer: "silent", "lossy" or "".
	ProbesLost   int      `json:"probes_lost"`
	ProbeRTT     Duration `json:"probe_rtt"`
	RoutedAround string   `json:"routed_around,omitempty"`
	// KeyGeneration is how many times the link's sending keys have moved
	// on (trust.rekey_interval).
	KeyGeneration uint64 `json:"key_generation"`
	// CertNotAfter is when the peer's certificate expires (the link
	// closes then).
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
}

// Peers fetches /v1/peers.
func (c *Client) Peers() (*Peers, []byte, error) {
	var p Peers
	var raw []byte
	if err := c.Get("/v1/peers", &p, &raw); err != nil {
		return nil, nil, err
	}
	return &p, raw, nil
}

// Groups is `ipopctl groups`: the querier(s) and every multicast group the
// node knows, locally or from peers.
type Groups struct {
	Queriers []QuerierStatus `json:"queriers"`
	Groups   []GroupStatus   `json:"groups"`
}

// QuerierStatus is the IGMP (family 4) or MLD (family 6) querier on the TAP.
type QuerierStatus struct {
	Family       int      `json:"family"`
	Querier      bool     `json:"querier"` // we are the querier (won the election)
	Version      int      `json:"version"`
	OtherQuerier string   `json:"other_querier,omitempty"`
	OtherVersion int      `json:"other_querier_version,omitempty"` // what the other querier speaks
	OtherPresent Duration `json:"other_querier_present,omitempty"`
	NextQuery    Duration `json:"next_query"`
}

// GroupStatus is one group (and its source filters).
type GroupStatus struct {
	Group     string         `json:"group"`
	Local     *LocalGroup    `json:"local,omitempty"`  // nil: no local member
	Remote    []Subscription `json:"remote"`           // subscribed nodes
	FwdFrames uint64         `json:"forwarded_frames"` // frames sent to nodes (one per subscriber)
	FwdBytes  uint64         `json:"forwarded_bytes"`
	DlvFrames uint64         `json:"delivered_frames"` // frames from the overlay written to the TAP
	DlvBytes  uint64         `json:"delivered_bytes"`
	// Mode is how this node sends the group's frames as a source:
	// "replicate" (to each subscriber node) or "tree".
	Mode string      `json:"mode"`
	Tree *TreeStatus `json:"tree,omitempty"` // nil: this node is not on the group's tree
}

// TreeStatus is this node's place in a group's distribution tree.
type TreeStatus struct {
	Root bool `json:"root"` // the tree's root: the node nearest the group's key
	// Parent is the tree neighbour toward the root; Adopted: chosen by a
	// redirect (the parent had no room), not the ring's next hop.
	Parent  *TreeNode `json:"parent,omitempty"`
	Adopted bool      `json:"adopted,omitempty"`
	// Detour: no link is nearer the key than this node (a hole in the
	// ring), the parent is a node one of its links announced.
	Detour   bool       `json:"detour,omitempty"`
	Depth    int        `json:"depth"` // hops below the root, as the parent last said
	Children []TreeNode `json:"children"`
	Key      string     `json:"key"` // the group's key on the ring
}

// TreeNode is a tree neighbour.
type TreeNode struct {
	Name   string `json:"name"`
	NodeID string `json:"node_id"`
}

// LocalGroup is the querier's state for a group on the TAP.
type LocalGroup struct {
	Filter       string        `json:"filter"` // INCLUDE{...} or EXCLUDE{...}
	Compat       int           `json:"compat_version"`
	GroupTimer   Duration      `json:"group_timer"`
	Sources      []SourceTimer `json:"sources,omitempty"`
	LastReporter string        `json:"last_reporter,omitempty"`
}

// SourceTimer is a source record of a group.
type SourceTimer struct {
	Source  string   `json:"source"`
	Timer   Duration `json:"timer"`
	Forward bool     `json:"forward"`
}

// Subscription is a remote node's filter for a group.
type Subscription struct {
	Name   string `json:"name"`
	NodeID string `json:"node_id"`
	Filter string `json:"filter"`
}

// Groups fetches /v1/groups.
func (c *Client) Groups() (*Groups, []byte, error) {
	var g Groups
	var raw []byte
	if err := c.Get("/v1/groups", &g, &raw); err != nil {
		return nil, nil, err
	}
	return &g, raw, nil
}

// Neighbours is `ipopctl arp`: the IP → MAC → owner table.
type Neighbours struct {
	Entries []Neighbour       `json:"entries"`
	Stats   map[string]uint64 `json:"stats"` // answered locally, forwarded, conflicts, moves, ...
}

// Neighbour is one entry.
type Neighbour struct {
	IP      string   `json:"ip"`
	MAC     string   `json:"mac"`
	Owner   string   `json:"owner"` // "local" or the owning node's name
	OwnerID string   `json:"owner_id,omitempty"`
	Via     string   `json:"via"` // how it was learned: arp-request, arp-reply, garp, ns, na, unsolicited-na, advert
	Age     Duration `json:"age"` // since last seen
}

// Neighbours fetches /v1/arp.
func (c *Client) Neighbours() (*Neighbours, []byte, error) {
	var n Neighbours
	var raw []byte
	if err := c.Get("/v1/arp", &n, &raw); err != nil {
		return nil, nil, err
	}
	return &n, raw, nil
}

// TreeWalk is a group's whole tree as its nodes told it (/v1/tree?group=G,
// ipopctl tree): each node's own place, in the order asked, and the nodes
// asked that did not answer within the walk's time (2 s).
type TreeWalk struct {
	Group      string         `json:"group"`
	Nodes      []TreeWalkNode `json:"nodes"`
	Unanswered []TreeNode     `json:"unanswered"`
}

// TreeWalkNode is one node's answer: on the tree or not, the root or its
// parent, its depth as its parent last said, its children.
type TreeWalkNode struct {
	TreeNode
	Here     bool       `json:"here,omitempty"` // the node that walked
	On       bool       `json:"on"`
	Root     bool       `json:"root,omitempty"`
	Depth    int        `json:"depth"`
	Parent   *TreeNode  `json:"parent,omitempty"`
	Children []TreeNode `json:"children"`
}

// Tree asks for group's whole tree.
func (c *Client) Tree(group string) (*TreeWalk, []byte, error) {
	var w TreeWalk
	var raw []byte
	if err := c.Get("/v1/tree?group="+url.QueryEscape(group), &w, &raw); err != nil {
		return nil, nil, err
	}
	return &w, raw, nil
}
