package config

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ipopd/ipopd/overlay/nodeid"
	"github.com/pion/stun"
)

// ipopdAllowed is the allowed text of each key, shared with decoding so a
// key reads the same whether its value failed to parse or to validate.
var ipopdAllowed = allowedOf(Default().fields())

// IGMP timer limits. The Max Resp Code of IGMPv3 and MLDv2 queries tops out
// at 31744 tenths of a second and the QQIC at 31744 s (RFC 3376 4.1.1,
// 4.1.7); IGMPv2 has one byte of tenths (RFC 2236), so 25.5 s. Below a tenth
// of a second the code would be 0.
const (
	maxQueryInterval = 31744 * time.Second
	maxResponse      = 31744 * 100 * time.Millisecond
	maxResponseV2    = 255 * 100 * time.Millisecond
	minResponse      = 100 * time.Millisecond
)

// Validate reports the first problem in c, checking keys in the contract's
// order, as a *KeyError wrapping ErrInvalid. Load calls it; call it on a
// Config built or changed in code.
func (c *Config) Validate() error {
	v := &checker{sources: c.sources, allowed: ipopdAllowed}
	v.name("network", c.Network)
	v.name("node.name", c.Node.Name)
	v.nonEmpty("node.cert", c.Node.Cert)
	v.nonEmpty("node.key", c.Node.Key)
	v.nonEmpty("node.ca", c.Node.CA)
	c.validateTap(v)
	for i, r := range c.Rendezvous {
		v.hostPort(indexed("rendezvous", i), r, true)
	}
	for i, s := range c.STUN {
		v.uri(indexed("stun", i), s, stun.SchemeTypeSTUN, stun.SchemeTypeSTUNS)
	}
	for i, t := range c.TURN {
		key := indexed("turn", i)
		v.uri(key+".url", t.URL, stun.SchemeTypeTURN, stun.SchemeTypeTURNS)
		v.nonEmpty(key+".username", t.Username)
		v.nonEmpty(key+".credential", t.Credential)
	}
	v.intRange("ice.port", c.ICE.Port, 0, 65535)
	for i, name := range c.ICE.Interfaces {
		v.ifname(indexed("ice.interfaces", i), name)
	}
	c.validateIGMP(v)
	t := &c.Topology
	v.intRange("topology.successors", t.Successors, 1, 16)
	v.intRange("topology.chords", t.Chords, 0, 16)
	if t.OnDemand.Threshold <= 0 {
		v.fail("topology.on_demand.threshold", t.OnDemand.Threshold.String(), "is not above 0")
	}
	v.durRange("topology.on_demand.idle", t.OnDemand.Idle, 1, 1<<63-1)
	v.intRange("topology.on_demand.max_links", t.OnDemand.MaxLinks, 0, 1024)
	v.intRange("multicast.fanout", c.Multicast.Fanout, 1, 64)
	v.intRange("multicast.replicate_max", c.Multicast.ReplicateMax, 0, 1024)
	v.durRange("trust.rekey_interval", c.Trust.RekeyInterval, time.Second, 24*time.Hour)
	v.absPath("control.socket", c.Control.Socket)
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen, false)
	}
	v.level("log.level", c.Log.Level)
	return v.result()
}

func (c *Config) validateTap(v *checker) {
	t := &c.Tap
	v.ifname("tap.name", t.Name)
	if t.Mode != ModeHost && t.Mode != ModeSwitch {
		v.fail("tap.mode", quote(string(t.Mode)), "is not a known mode")
	}
	if t.Address.IsValid() && !t.Address.Addr().Is4() {
		v.fail("tap.address", quote(t.Address.String()), "is not an IPv4 prefix")
	}
	if a := t.Address6.Addr(); t.Address6.IsValid() && (!a.Is6() || a.Is4In6()) {
		v.fail("tap.address6", quote(t.Address6.String()), "is not an IPv6 prefix")
	}
	v.intRange("tap.mtu", t.MTU, 576, 9000)
	if t.Address6.IsValid() && t.MTU < 1280 {
		v.failAllowed("tap.mtu", strconv.Itoa(t.MTU), "is below 1280, the IPv6 minimum (RFC 8200), and tap.address6 is set",
			"1280..9000 with tap.address6")
	}
	switch {
	case t.Mode == ModeSwitch && t.Bridge == "":
		v.fail("tap.bridge", `""`, "is empty in switch mode")
	case t.Bridge != "":
		v.ifname("tap.bridge", t.Bridge)
	}
	if t.Mode == ModeHost && !t.Address.IsValid() && !t.Address6.IsValid() {
		v.failAllowed("tap.address", `""`, "is unset in host mode and so is tap.address6",
			"an IPv4 prefix in tap.address, an IPv6 prefix in tap.address6, or both")
	}
}

func (c *Config) validateIGMP(v *checker) {
	g := &c.IGMP
	v.intRange("igmp.version", g.Version, 1, 3)
	v.durRange("igmp.query_interval", g.QueryInterval, time.Second, maxQueryInterval)
	limit := maxResponse
	if g.Version == 2 {
		limit = maxResponseV2
	}
	v.durRange("igmp.query_response_interval", g.QueryResponseInterval, minResponse, limit)
	if g.QueryResponseInterval >= g.QueryInterval {
		v.fail("igmp.query_response_interval", g.QueryResponseInterval.String(),
			"is not below igmp.query_interval ("+g.QueryInterval.String()+")")
	}
	v.intRange("igmp.robustness", g.Robustness, 1, 10)
	v.durRange("igmp.last_member_query_interval", g.LastMemberQueryInterval, minResponse, limit)
}

// checker keeps the first problem found; later checks still run but are
// not recorded, which keeps Validate a flat list of checks.
type checker struct {
	sources map[string]string // key → where its value came from
	allowed map[string]string // key → allowed text
	err     *KeyError
}

func (v *checker) fail(key, value, problem string) {
	v.failAllowed(key, value, problem, v.allowed[baseKey(key)])
}

func (v *checker) failAllowed(key, value, problem, allowed string) {
	if v.err == nil {
		v.err = &KeyError{Source: v.sources[baseKey(key)], Key: key, Value: value, Problem: problem, Allowed: allowed}
	}
}

// result returns the first problem, or a nil error (not a nil *KeyError).
func (v *checker) result() error {
	if v.err == nil {
		return nil
	}
	return v.err
}

func (v *checker) nonEmpty(key, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(key, quote(s), "is empty")
	}
}

func (v *checker) name(key, s string) {
	switch {
	case s == "":
		v.fail(key, `""`, "is empty")
	case !nodeid.ValidName(s):
		v.fail(key, quote(s), "is not a valid name")
	}
}

// ifname applies the kernel's rules for interface names (dev_valid_name):
// under IFNAMSIZ (16) bytes with the NUL, no '/', ':' or whitespace.
func (v *checker) ifname(key, s string) {
	switch {
	case s == "":
		v.fail(key, `""`, "is empty")
	case len(s) > 15:
		v.fail(key, quote(s), "is longer than 15 bytes")
	case s == "." || s == "..":
		v.fail(key, quote(s), "is not an interface name")
	case strings.ContainsAny(s, "/:"):
		v.fail(key, quote(s), "contains '/' or ':'")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		v.fail(key, quote(s), "contains whitespace or a control character")
	}
}

// hostPort wants host:port with a numeric port in 1..65535; needHost is
// false for listen addresses, where ":9100" means every interface.
func (v *checker) hostPort(key, s string, needHost bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.fail(key, quote(s), "is not host:port")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.fail(key, quote(s), "has no port in 1..65535")
	}
	if needHost && host == "" {
		v.fail(key, quote(s), "has no host")
	}
}

// uri checks a STUN or TURN URI (RFC 7064, 7065) and that its scheme is one
// of schemes, so a turn: URI in the stun list is caught.
func (v *checker) uri(key, s string, schemes ...stun.SchemeType) {
	u, err := stun.ParseURI(s)
	if err != nil {
		v.fail(key, quote(s), "is not a STUN/TURN URI ("+err.Error()+")")
		return
	}
	if u.Scheme != schemes[0] && u.Scheme != schemes[1] {
		v.fail(key, quote(s), "has scheme "+u.Scheme.String()+", not "+schemes[0].String()+" or "+schemes[1].String())
	}
}

func (v *checker) intRange(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(key, strconv.Itoa(n), "is out of range")
	}
}

func (v *checker) durRange(key string, d, lo, hi time.Duration) {
	switch {
	case d < lo && lo <= 1:
		v.fail(key, d.String(), "is not above 0")
	case d < lo:
		v.fail(key, d.String(), "is below "+lo.String())
	case d > hi:
		v.fail(key, d.String(), "is above "+hi.String())
	}
}

func (v *checker) absPath(key, s string) {
	switch {
	case s == "":
		v.fail(key, `""`, "is empty")
	case !filepath.IsAbs(s):
		v.fail(key, quote(s), "is not an absolute path")
	}
}

func (v *checker) level(key string, l slog.Level) {
	switch l {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		v.fail(key, quote(l.String()), "is not a log level")
	}
}

func allowedOf(fields []field) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		m[f.key] = f.allowed
	}
	return m
}
