package nat

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 5389 long-term credentials and coturn's REST API are HMAC-SHA1
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

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
	Log    *slog.Logger
}

// Server is a STUN and TURN (RFC 5766, UDP) server. Binding requests are
// answered for anyone; allocations need Users or Secret credentials;
// permissions to loopback, multicast or unspecified peers are refused
// (loopback is allowed when RelayIP itself is loopback, for tests).
type Server struct {
	srv  *turn.Server
	addr net.Addr
}

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
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       realm,
		AuthHandler: authHandler(cfg.Users, cfg.Secret, log, time.Now),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind},
			PermissionHandler:     permissionHandler(relayIP.IsLoopback(), log),
		}},
		LoggerFactory: newPionLogs(log),
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("%w: %w", ErrServerConfig, err)
	}
	log.Info("STUN/TURN listening", "addr", pc.LocalAddr(), "relay_ip", relayIP, "realm", realm,
		"users", len(cfg.Users), "secret", cfg.Secret != "")
	return &Server{srv: srv, addr: pc.LocalAddr()}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops the server and frees every allocation.
func (s *Server) Close() error { return s.srv.Close() }

// authHandler returns the long-term key for a username (RFC 5389 §15.4:
// MD5(user:realm:password)). Static users win; otherwise, with a secret,
// a "<expiry>:<name>" username is checked for expiry and its password is
// derived as coturn does. pion's own NewLongTermAuthHandler only takes a
// bare "<expiry>" username, which coturn-style clients do not send.
func authHandler(users map[string]string, secret string, log *slog.Logger, now func() time.Time) turn.AuthHandler {
	// Refusals are logged at Info: anyone on the internet can cause them.
	return func(username, realm string, src net.Addr) ([]byte, bool) {
		if pw, ok := users[username]; ok {
			return turn.GenerateAuthKey(username, realm, pw), true
		}
		if secret == "" {
			log.Info("TURN auth: unknown user", "user", username, "src", src)
			return nil, false
		}
		expiry, ok := ephemeralExpiry(username)
		if !ok {
			log.Info("TURN auth: not a static user nor <expiry>:<name>", "user", username, "src", src)
			return nil, false
		}
		if !now().Before(expiry) {
			log.Info("TURN auth: credential expired", "user", username, "expiry", expiry, "src", src)
			return nil, false
		}
		return turn.GenerateAuthKey(username, realm, ephemeralPassword(secret, username)), true
	}
}

// permissionHandler refuses relaying to addresses that would turn the
// server into a way into its own host or a multicast amplifier: loopback
// (unless the relay itself is on loopback, i.e. a local test), unspecified,
// multicast and limited broadcast. coturn refuses loopback peers by
// default too.
func permissionHandler(allowLoopback bool, log *slog.Logger) turn.PermissionHandler {
	return func(client net.Addr, peer net.IP) bool {
		bad := peer.IsUnspecified() || peer.IsMulticast() || peer.Equal(net.IPv4bcast) ||
			(peer.IsLoopback() && !allowLoopback)
		if bad {
			log.Info("TURN permission refused", "client", client, "peer", peer)
		}
		return !bad
	}
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
