package nat

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 5389 long-term credentials and coturn's REST API are HMAC-SHA1
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipopd/ipopd/overlay/limitlog"
	"github.com/pion/turn/v2"
)

// ServerConfig configures the STUN + TURN server of ipop-rendezvous.
type ServerConfig struct {
	Listen  string // UDP host:port
	RelayIP string // address relays are allocated on and advertised with
	// RelayBind is the address relay sockets bind to; empty means RelayIP.
	// Set it (e.g. "0.0.0.0") when RelayIP is a 1:1 NAT's public address
	// that is not on any local interface.
	RelayBind string
	Realm     string            // empty means "ipopd"
	Users     map[string]string // static long-term credentials
	// Secret enables coturn use-auth-secret (TURN REST API) credentials,
	// see EphemeralCredentials; it may be used together with Users.
	Secret string
	// AllowPeers lists peer prefixes relayed to even though they are
	// private, link-local or this host's own (denied by default, as
	// coturn does: a relay into the server's own networks).
	AllowPeers []netip.Prefix
	// MaxAllocations bounds the allocations one user holds (distinct
	// client addresses within the allocation lifetime); 0 means
	// DefaultMaxAllocations.
	MaxAllocations int
	Log            *slog.Logger
}

// DefaultMaxAllocations is the per-user bound: a node makes one
// allocation per link it sets up with TURN.
const DefaultMaxAllocations = 64

// Server is a STUN and TURN (RFC 5766, UDP) server. Binding requests are
// answered for anyone; allocations need Users or Secret credentials, at
// most MaxAllocations per user; permissions to loopback, multicast,
// unspecified, private, link-local or this host's own addresses (other
// than the relay address, for relay-to-relay paths) are refused unless
// AllowPeers lists them (loopback is allowed when RelayIP itself is
// loopback, for tests). Refusals are counted and logged at most once a
// second.
type Server struct {
	srv   *turn.Server
	addr  net.Addr
	stats *ServerStats
}

// ServerStats are the refusals of a Server, cumulative.
type ServerStats struct {
	AuthRefused, QuotaRefused, PeerRefused atomic.Uint64
}

// Stats returns the counters.
func (s *Server) Stats() *ServerStats { return s.stats }

// NewServer listens on cfg.Listen and serves until Close.
func NewServer(cfg ServerConfig) (*Server, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("subsystem", "turn")
	relayIP := net.ParseIP(cfg.RelayIP).To4()
	if relayIP == nil {
		return nil, fmt.Errorf("%w: relay IP %q is not an IPv4 address", ErrServerConfig, cfg.RelayIP)
	}
	bind := cfg.RelayBind
	if bind == "" {
		bind = relayIP.String()
	}
	if net.ParseIP(bind) == nil {
		return nil, fmt.Errorf("%w: relay bind %q is not an IP address", ErrServerConfig, bind)
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "ipopd"
	}
	if len(cfg.Users) == 0 && cfg.Secret == "" {
		log.Warn("no TURN users and no secret: STUN only, every allocation will be refused")
	}
	pc, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nat: STUN/TURN listen %q: %w", cfg.Listen, err)
	}
	stats := &ServerStats{}
	limit := newRefusals(log, time.Second)
	quota := cfg.MaxAllocations
	if quota <= 0 {
		quota = DefaultMaxAllocations
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       realm,
		AuthHandler: authHandler(cfg.Users, cfg.Secret, quota, stats, limit, time.Now),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind},
			PermissionHandler:     permissionHandler(relayIP, localAddrs(), cfg.AllowPeers, stats, limit),
		}},
		LoggerFactory: newPionLogs(log),
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("%w: %w", ErrServerConfig, err)
	}
	log.Info("STUN/TURN listening", "addr", pc.LocalAddr(), "relay_ip", relayIP, "realm", realm,
		"users", len(cfg.Users), "secret", cfg.Secret != "")
	return &Server{srv: srv, addr: pc.LocalAddr(), stats: stats}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops the server and frees every allocation.
func (s *Server) Close() error { return s.srv.Close() }

// refusals log what anyone on the internet can cause (limitlog: at most
// one line a second each, with what was suppressed meanwhile); user names
// from the wire are quoted and cut short.
type refusals struct{ auth, quota, peer *limitlog.Logger }

func newRefusals(log *slog.Logger, every time.Duration) *refusals {
	return &refusals{
		auth:  limitlog.New(log, slog.LevelInfo, "TURN auth refused", every),
		quota: limitlog.New(log, slog.LevelWarn, "TURN allocation quota reached", every),
		peer:  limitlog.New(log, slog.LevelInfo, "TURN permission refused", every),
	}
}

// authHandler returns the long-term key for a username (RFC 5389 §15.4:
// MD5(user:realm:password)). Static users win; otherwise, with a secret,
// a "<expiry>:<name>" username is checked for expiry and its password is
// derived as coturn does. pion's own NewLongTermAuthHandler only takes a
// bare "<expiry>" username, which coturn-style clients do not send. A
// user holding quota allocations (distinct client addresses seen within
// the allocation lifetime) gets no more.
func authHandler(users map[string]string, secret string, quota int, stats *ServerStats, rl *refusals, now func() time.Time) turn.AuthHandler {
	q := &quotas{max: quota, seen: map[string]map[string]time.Time{}}
	return func(username, realm string, src net.Addr) ([]byte, bool) {
		key, ok := authKey(users, secret, username, realm, now)
		if !ok {
			stats.AuthRefused.Add(1)
			rl.auth.Log("user", limitlog.Quote(username), "src", src)
			return nil, false
		}
		from := "?"
		if src != nil {
			from = src.String()
		}
		if !q.admit(username, from, now()) {
			stats.QuotaRefused.Add(1)
			rl.quota.Log("user", limitlog.Quote(username), "src", src, "quota", quota)
			return nil, false
		}
		return key, true
	}
}

func authKey(users map[string]string, secret, username, realm string, now func() time.Time) ([]byte, bool) {
	if pw, ok := users[username]; ok {
		return turn.GenerateAuthKey(username, realm, pw), true
	}
	if secret == "" {
		return nil, false
	}
	expiry, ok := ephemeralExpiry(username)
	if !ok || !now().Before(expiry) {
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, ephemeralPassword(secret, username)), true
}

// quotaWindow is how long a client address counts against its user: the
// default allocation lifetime (RFC 5766: 10 minutes).
const quotaWindow = 10 * time.Minute

// maxQuotaUsers bounds the users tracked (authenticated ones only).
const maxQuotaUsers = 100_000

// quotas tracks, per user, the client addresses that used the server
// recently: each allocation has its own.
type quotas struct {
	mu   sync.Mutex
	max  int
	seen map[string]map[string]time.Time
}

func (q *quotas) admit(user, src string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	addrs := q.seen[user]
	if addrs == nil {
		if len(q.seen) >= maxQuotaUsers {
			for u, a := range q.seen {
				if len(a) == 0 {
					delete(q.seen, u)
				}
			}
		}
		addrs = map[string]time.Time{}
		q.seen[user] = addrs
	}
	if _, known := addrs[src]; !known && len(addrs) >= q.max {
		for a, t := range addrs {
			if now.Sub(t) > quotaWindow {
				delete(addrs, a)
			}
		}
		if len(addrs) >= q.max {
			return false
		}
	}
	addrs[src] = now
	return true
}

// Peers relaying to which would reach into the server's own networks.
var deniedPeers = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
}

// permissionHandler refuses relaying to addresses that would turn the
// server into a way into its own host or networks or a multicast
// amplifier: loopback (unless the relay itself is on loopback, i.e. a
// local test), unspecified, multicast, limited broadcast, private and
// link-local ranges and the host's own addresses other than the relay
// address itself (which relay-to-relay paths use); allow lists
// exceptions. coturn refuses loopback and private peers by default too.
func permissionHandler(relay net.IP, own []netip.Addr, allow []netip.Prefix, stats *ServerStats, rl *refusals) turn.PermissionHandler {
	relayAddr, _ := netip.AddrFromSlice(relay.To4())
	return func(client net.Addr, peer net.IP) bool {
		p, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		p = p.Unmap()
		for _, a := range allow {
			if a.Contains(p) {
				return true
			}
		}
		bad := p.IsUnspecified() || p.IsMulticast() || p == netip.AddrFrom4([4]byte{255, 255, 255, 255}) ||
			p.IsLoopback() && !relayAddr.IsLoopback()
		for _, d := range deniedPeers {
			bad = bad || d.Contains(p)
		}
		if p != relayAddr {
			for _, o := range own {
				bad = bad || o == p && !o.IsLoopback()
			}
		}
		if bad {
			stats.PeerRefused.Add(1)
			rl.peer.Log("client", client, "peer", p)
		}
		return !bad
	}
}

// localAddrs are this host's interface addresses.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// ephemeralExpiry parses the expiry of a TURN REST API username: the
// decimal Unix time before the first ':' (or the whole name).
func ephemeralExpiry(username string) (time.Time, bool) {
	ts, _, _ := strings.Cut(username, ":")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

func ephemeralPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// EphemeralCredentials are coturn "use-auth-secret" (TURN REST API)
// credentials valid until now+ttl: username "<expiry unix>:<name>",
// password base64(HMAC-SHA1(secret, username)). An empty name gives the
// bare "<expiry unix>" form.
func EphemeralCredentials(secret, name string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10)
	if name != "" {
		username += ":" + name
	}
	return username, ephemeralPassword(secret, username)
}
