package igmp_test

// The rig of the real-TAP tests: a namespace with a TAP, and a Router
// driven with the real clock by one serial loop, as ipopd's node does:
//
//	TAP Read (reader goroutine) ──► loop: Input ─┐
//	timer at Router.Next()      ──► loop: Advance├─► TAP Write (queries)
//	k.call(f)                   ──► loop: f(r)  ─┘   events channel

import (
	"encoding/binary"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipopd/ipopd/deploy/fuzzseed"
	"github.com/ipopd/ipopd/deploy/netns"
	"github.com/ipopd/ipopd/igmp"
	"github.com/ipopd/ipopd/igmp/filter"
	"github.com/ipopd/ipopd/tap"
)

var captureSeeds = flag.Bool("capture-seeds", false, "write the kernel's IGMP/MLD frames into testdata/fuzz as seed corpus")

const tapName = "igt0"

// Our querier: spare addresses of the TAP's link (the kernel ignores
// queries from its own IPv4 address) and a virtual router MAC.
var (
	routerIP  = netip.MustParseAddr("10.77.0.254")
	routerLL  = netip.MustParseAddr("fe80::77:1")
	routerMAC = net.HardwareAddr{0x02, 0x1b, 0, 0, 0, 1}
)

type kernelRig struct {
	t      *testing.T
	h      *netns.Host
	dev    tap.Device
	ifi    *net.Interface
	events chan igmp.Event
	kernel chan *igmp.Message // every IGMP/MLD message the kernel sent
	calls  chan func(*igmp.Router)
}

// newKernelRig opens the TAP in a fresh namespace, runs sysctls (such as
// force_igmp_version) and starts a Router on it.
func newKernelRig(t *testing.T, cfg igmp.Config, sysctls ...string) *kernelRig {
	t.Helper()
	k := &kernelRig{t: t, events: make(chan igmp.Event, 256), kernel: make(chan *igmp.Message, 256),
		calls: make(chan func(*igmp.Router))}
	k.h, k.dev, k.ifi = openTAP(t, sysctls...)
	cfg.IPv4, cfg.IPv6, cfg.MAC = routerIP, routerLL, routerMAC
	r, err := igmp.New(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	reads := reader(t, k.dev, stop)
	go k.loop(r, reads, stop, done)
	t.Cleanup(func() {
		close(stop)
		<-done
		k.dev.Close()
		for range reads { // the reader ends once the TAP is closed
		}
		if st := r.Stats(); st.Errors != (igmp.ErrorStats{}) {
			t.Errorf("the router refused frames of the kernel: %+v", st.Errors)
		}
	})
	return k
}

// openTAP makes a namespace with the TAP (10.77.0.1/24, fd77::1/64) and
// runs sysctls in it. Closing the TAP is up to the caller.
func openTAP(t *testing.T, sysctls ...string) (*netns.Host, tap.Device, *net.Interface) {
	t.Helper()
	tb := netns.NewT(t)
	h, err := tb.AddNamespace("igmp")
	if err != nil {
		t.Fatal(err)
	}
	var dev tap.Device
	var ifi *net.Interface
	err = h.Do(func() (err error) {
		dev, err = tap.Open(tap.Config{Name: tapName, Mode: tap.ModeHost, MTU: 1400,
			Address: netip.MustParsePrefix("10.77.0.1/24"), Address6: netip.MustParsePrefix("fd77::1/64")})
		if err != nil {
			return err
		}
		ifi, err = net.InterfaceByName(tapName)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sysctls {
		if _, err := h.Run("sysctl", "-w", s); err != nil {
			dev.Close()
			t.Fatal(err)
		}
	}
	return h, dev, ifi
}

// reader hands over batches of IGMP and MLD frames read from dev until it
// is closed; it drops them once stop is closed.
func reader(t *testing.T, dev tap.Device, stop <-chan struct{}) <-chan [][]byte {
	ch := make(chan [][]byte, 64)
	go func() {
		defer close(ch)
		bufs, sizes := make([][]byte, 16), make([]int, 16)
		for i := range bufs {
			bufs[i] = make([]byte, tap.MaxFrame(dev.MTU()))
		}
		for {
			n, err := dev.Read(bufs, sizes)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("TAP read: %v", err)
				}
				return
			}
			var batch [][]byte
			for i := range n {
				if c := tap.Classify(bufs[i][:sizes[i]]); c == tap.ClassIGMP || c == tap.ClassMLD {
					batch = append(batch, append([]byte(nil), bufs[i][:sizes[i]]...))
				}
			}
			if len(batch) > 0 {
				select {
				case ch <- batch:
				case <-stop:
				}
			}
		}
	}()
	return ch
}

func (k *kernelRig) loop(r *igmp.Router, reads <-chan [][]byte, stop, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var tc <-chan time.Time
		if n := r.Next(); !n.IsZero() {
			timer.Reset(time.Until(n))
			tc = timer.C
		}
		select {
		case <-stop:
			return
		case batch, ok := <-reads:
			if !ok {
				return
			}
			for _, f := range batch {
				if err := r.Input(time.Now(), f); err != nil {
					k.t.Errorf("Input of a kernel frame: %v", err)
				}
				k.seen(f)
			}
		case <-tc:
			r.Advance(time.Now())
		case f := <-k.calls:
			f(r)
		}
		if out := r.TakeOutput(); len(out) > 0 {
			if _, err := k.dev.Write(out); err != nil {
				k.t.Errorf("TAP write: %v", err)
			}
		}
		for _, e := range r.TakeEvents() {
			k.events <- e
		}
	}
}

// seen decodes a frame the kernel sent, passes it on and, with
// -capture-seeds, saves the first of each kind as fuzz seeds.
func (k *kernelRig) seen(f []byte) {
	payload, v6 := ipPayload(f)
	var m *igmp.Message
	var err error
	if v6 {
		m, err = igmp.ParseMLD(payload)
	} else {
		m, err = igmp.ParseIGMP(payload)
	}
	if err != nil {
		return // Input has reported it
	}
	select {
	case k.kernel <- m:
	default:
	}
	if !*captureSeeds {
		return
	}
	kind := "kernel-" + m.Type.String()
	if len(m.Records) > 0 {
		kind += "-" + m.Records[0].Type.String()
	}
	target := "FuzzParseIGMP"
	if v6 {
		target = "FuzzParseMLD"
	}
	for dir, data := range map[string][]byte{"FuzzInput": f, target: payload} {
		if _, err := os.Stat(filepath.Join(fuzzseed.Dir(dir), kind)); err == nil {
			continue // keep the first capture
		}
		fuzzseed.Write(k.t, dir, map[string][]byte{kind: data})
	}
}

// ipPayload finds the IGMP or ICMPv6 message of a frame the kernel sent:
// IPv4 with options, or IPv6 with one hop-by-hop header.
func ipPayload(f []byte) ([]byte, bool) {
	ip := f[14:]
	if ip[0]>>4 == 4 {
		return ip[int(ip[0]&0x0f)*4 : binary.BigEndian.Uint16(ip[2:])], false
	}
	p := ip[40 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
	if ip[6] == 0 {
		p = p[(int(p[1])+1)*8:]
	}
	return p, true
}

// call runs f on the router in the loop and waits for it.
func (k *kernelRig) call(f func(r *igmp.Router)) {
	done := make(chan struct{})
	k.calls <- func(r *igmp.Router) { f(r); close(done) }
	<-done
}

// await waits for an event for group that match accepts, failing the test
// after timeout; it returns when the event came. Other events are dropped.
func (k *kernelRig) await(group netip.Addr, timeout time.Duration, accept func(filter.Filter) bool) time.Time {
	k.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-k.events:
			if e.Group == group && accept(e.Filter) {
				return time.Now()
			}
		case <-deadline:
			k.t.Fatalf("no matching event for %v within %v", group, timeout)
		}
	}
}

// steady checks that group keeps filter for d: no event for it, and the
// router still has it at the end.
func (k *kernelRig) steady(group netip.Addr, want filter.Filter, d time.Duration) {
	k.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-k.events:
			if e.Group == group {
				k.t.Fatalf("%v changed to %v while it should stay %v", group, e.Filter, want)
			}
		case <-deadline:
			var got filter.Filter
			k.call(func(r *igmp.Router) { got = r.Filter(group) })
			if !got.Equal(want) {
				k.t.Fatalf("%v is %v, want %v", group, got, want)
			}
			return
		}
	}
}
