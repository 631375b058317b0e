package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestVerifyRawGarbage(t *testing.T) {
	ca := testCA(t, testNetwork)
	good := issueWindow(t, ca, "alpha", nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	for name, raw := range map[string][][]byte{
		"nil":       nil,
		"empty":     {},
		"nil leaf":  {nil},
		"text":      {[]byte("hello")},
		"truncated": {good.Cert.Raw[:len(good.Cert.Raw)/2]},
		"trailing":  {append(append([]byte{}, good.Cert.Raw...), 0)},
		"pem":       {encodeCert(good.Cert.Raw)},
	} {
		if p, err := VerifyRaw(raw, ca.Cert, testNetwork, time.Now()); !errors.Is(err, ErrBadCert) || p != nil {
			t.Errorf("%s: got %v, %v; want ErrBadCert", name, p, err)
		}
	}
	if _, err := VerifyRaw([][]byte{good.Cert.Raw}, nil, testNetwork, time.Now()); !errors.Is(err, ErrBadCert) {
		t.Errorf("nil CA: %v", err)
	}
	p, err := VerifyRaw([][]byte{good.Cert.Raw, []byte("ignored")}, ca.Cert, testNetwork, time.Now())
	if err != nil || p.ID != good.ID {
		t.Errorf("valid leaf: %v, %v", p, err)
	}
}

func TestVerifyMessagesNameTheCN(t *testing.T) {
	ca := testCA(t, testNetwork)
	other := testCA(t, testNetwork)
	leaf := issueWindow(t, ca, "alpha", nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	_, err := Verify(leaf.Cert, other.Cert, testNetwork, time.Now())
	want := `certificate "alpha" was not issued by the CA "ipopd CA demo" (wrong CA)`
	if !errors.Is(err, ErrWrongCA) || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = Verify(leaf.Cert, ca.Cert, "prod", time.Now())
	want = `certificate "alpha" is for network "demo", config network is "prod"`
	if !errors.Is(err, ErrWrongNetwork) || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestVerifyRejectsCAAsNode(t *testing.T) {
	ca := testCA(t, testNetwork)
	// The CA certificate is public and self-signed; presenting it as a node
	// certificate must not make anyone a node.
	if _, err := Verify(ca.Cert, ca.Cert, testNetwork, time.Now()); !errors.Is(err, ErrBadCert) {
		t.Errorf("CA as node: %v", err)
	}
	if _, err := Verify(nil, ca.Cert, testNetwork, time.Now()); !errors.Is(err, ErrBadCert) {
		t.Errorf("nil cert: %v", err)
	}
}

func TestAllows(t *testing.T) {
	p := &Peer{Prefixes: prefixes(t, "10.254.0.0/24", "fd54::1/128")}
	for addr, want := range map[string]bool{
		"10.254.0.0": true, "10.254.0.255": true, "10.254.1.0": false,
		"::ffff:10.254.0.7": true, "fd54::1": true, "fd54::1%eth0": true, "fd54::2": false,
	} {
		if got := p.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	if (&Peer{}).Allows(netip.MustParseAddr("10.254.0.1")) {
		t.Error("a peer without prefixes allows an address")
	}
	if (*Peer)(nil).String() != "peer(<nil>)" {
		t.Error("nil peer String")
	}
}

// TestTLSMutualAuth uses the certificates the way the rendezvous and links
// will: both sides present their node certificate and check the other's with
// VerifyRaw instead of hostname verification.
func TestTLSMutualAuth(t *testing.T) {
	ca := testCA(t, testNetwork)
	now := time.Now()
	mk := func(name string) *Identity {
		id := issueWindow(t, ca, name, nil, now.Add(-time.Hour), now.Add(time.Hour))
		id.TLS = tls.Certificate{Certificate: [][]byte{id.Cert.Raw}, PrivateKey: id.Key, Leaf: id.Cert}
		return id
	}
	alpha, beta := mk("alpha"), mk("beta")
	config := func(self *Identity, seen **Peer) *tls.Config {
		return &tls.Config{
			Certificates:       []tls.Certificate{self.TLS},
			ClientAuth:         tls.RequireAnyClientCert,
			InsecureSkipVerify: true, // replaced by VerifyPeerCertificate
			MinVersion:         tls.VersionTLS12,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				p, err := VerifyRaw(raw, ca.Cert, testNetwork, time.Now())
				*seen = p
				return err
			},
		}
	}
	var sawBeta, sawAlpha *Peer
	c1, c2 := net.Pipe()
	server := tls.Server(c1, config(alpha, &sawBeta))
	client := tls.Client(c2, config(beta, &sawAlpha))
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	// Close the pipe, not the TLS conns: their close_notify would wait for a
	// reader that is not there.
	c1.Close()
	c2.Close()
	if sawBeta == nil || sawBeta.ID != beta.ID || sawAlpha == nil || sawAlpha.ID != alpha.ID {
		t.Errorf("peers seen: server %v, client %v", sawBeta, sawAlpha)
	}
	if !strings.HasPrefix(sawBeta.String(), "peer(beta/") {
		t.Errorf("peer string %s", sawBeta)
	}
}
