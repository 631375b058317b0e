package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipopd/ipopd/deploy/netns"
)

// drops are the kernel's drop counters along a path, which say where lost
// datagrams went:
//
//	sender ─► SndIf ─[SndIf tx dropped: the TAP queue was full, the sending daemon read too slowly]
//	        ─► daemon A ─► underlay ─► daemon B's UDP socket ─[daemon socket drops: daemon B read too slowly]
//	        ─► daemon B ─► RcvIf ─[RcvIf rx dropped]─► receiver's socket ─[receiver socket drops]
//
// Natively only the last two apply. A lost IP fragment loses its whole
// datagram and shows up where the fragment was dropped.
type drops struct {
	SndIf, DaemonSock, RcvIf, RcvSock int64
}

func (d drops) sub(e drops) drops {
	return drops{d.SndIf - e.SndIf, d.DaemonSock - e.DaemonSock, d.RcvIf - e.RcvIf, d.RcvSock - e.RcvSock}
}

// rcvPort is group's port as /proc/net/udp shows it (":1389" for 5001). The
// receiver's socket is the only one bound to it; every other UDP socket in
// the receiving namespace is a daemon's.
var rcvPort = fmt.Sprintf(":%04X", netip.MustParseAddrPort(group).Port())

func readDrops(p *path) (drops, error) {
	var d drops
	var err error
	if d.SndIf, err = ifDrops(p.Snd, p.SndIf, "tx"); err != nil {
		return d, err
	}
	if d.RcvIf, err = ifDrops(p.Rcv, p.RcvIf, "rx"); err != nil {
		return d, err
	}
	// /proc/net is the reader's namespace's, so read it from inside.
	out, err := p.Rcv.Run("cat", "/proc/net/udp")
	if err != nil {
		return d, err
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if len(f) < 13 || f[0] == "sl" {
			continue
		}
		n, err := strconv.ParseInt(f[12], 10, 64)
		if err != nil {
			return d, fmt.Errorf("bench: /proc/net/udp in %s: %q", p.Rcv, line)
		}
		if strings.HasSuffix(f[1], rcvPort) {
			d.RcvSock += n
		} else {
			d.DaemonSock += n
		}
	}
	return d, nil
}

// ifDrops is an interface's dropped counter in direction dir ("rx", "tx").
func ifDrops(h *netns.Host, dev, dir string) (int64, error) {
	out, err := h.Run("ip", "-j", "-s", "link", "show", "dev", dev)
	if err != nil {
		return 0, err
	}
	var links []struct {
		Stats map[string]struct{ Dropped int64 } `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("bench: ip -j -s link show dev %s in %s: %v\n%s", dev, h, err, out)
	}
	return links[0].Stats[dir].Dropped, nil
}
