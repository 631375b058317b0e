package dataplane

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/trust"
)

// testCA issues identities of one network for the tests of this package.
type testCA struct {
	ca  *identity.CA
	dir string
}

func newTestCA(t testing.TB) *testCA {
	ca, err := identity.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, dir: t.TempDir()}
}

func (c *testCA) identity(t testing.TB, name string, prefixes ...netip.Prefix) *identity.Identity {
	crt, key, err := c.ca.Issue(name, prefixes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(c.dir, name+".crt"), filepath.Join(c.dir, name+".key")
	if err := os.WriteFile(cf, crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, key, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := identity.LoadNode(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testPlane is a plane of a fresh identity named name, with cfg's other
// fields.
func (c *testCA) plane(t testing.TB, name string, cfg Config) (*Plane, *identity.Identity) {
	id := c.identity(t, name)
	cfg.Self, cfg.Signer, cfg.Directory, cfg.Identity = id.ID, trust.NewSigner(id, nil), trust.NewDirectory(c.ca.Cert, "test", 0, nil), id
	if cfg.MTU == 0 {
		cfg.MTU = 1400
	}
	return New(cfg), id
}
