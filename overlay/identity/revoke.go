package identity

// The network's revocation list: node IDs the CA has revoked, signed by
// the CA, with a sequence number so that a node takes only newer lists.
//
//	-----BEGIN IPOPD REVOCATIONS-----
//	base64 of {"network":"demo","seq":3,"issued":"2026-12-01T10:00:00Z","nodes":["3fa9…",…]}
//	-----END IPOPD REVOCATIONS-----
//	-----BEGIN IPOPD REVOCATIONS SIGNATURE-----
//	base64 of the CA's ECDSA signature (ASN.1) over SHA-256(revContext || the JSON)
//	-----END IPOPD REVOCATIONS SIGNATURE-----
//
// ipopctl ca revoke writes it (DIR/revoked.pem); nodes read it from
// trust.revoked, and the rendezvous hands the newest it has to every node.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

const (
	revBlock     = "IPOPD REVOCATIONS"
	revSigBlock  = "IPOPD REVOCATIONS SIGNATURE"
	revContext   = "ipopd revocations v1\x00"
	revokedName  = "revoked.pem"
	maxRevFile   = 4 << 20
	maxRevoked   = 50_000
	revTimestamp = time.RFC3339
)

// Revocations is a verified revocation list.
type Revocations struct {
	Network string      `json:"network"`
	Seq     uint64      `json:"seq"`
	Issued  time.Time   `json:"issued"`
	Nodes   []nodeid.ID `json:"nodes"`
}

// Has reports whether id is revoked.
func (r *Revocations) Has(id nodeid.ID) bool {
	if r == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(r.Nodes, id, nodeid.ID.Compare)
	return found
}

// SignRevocations encodes r, signed by the CA (which must hold its key).
func (ca *CA) SignRevocations(r *Revocations) ([]byte, error) {
	if ca.Key == nil {
		return nil, fmt.Errorf("identity: signing revocations needs the CA key")
	}
	nodes := slices.Clone(r.Nodes)
	slices.SortFunc(nodes, nodeid.ID.Compare)
	body, err := json.Marshal(&Revocations{Network: ca.Network, Seq: r.Seq, Issued: r.Issued.UTC().Truncate(time.Second), Nodes: slices.Compact(nodes)})
	if err != nil {
		return nil, err
	}
	digest := revDigest(body)
	sig, err := ca.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: revBlock, Bytes: body})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: revSigBlock, Bytes: sig})...), nil
}

func revDigest(body []byte) [32]byte {
	return sha256.Sum256(append([]byte(revContext), body...))
}

// ParseRevocations checks a revocation list against the network CA and
// returns it. Errors wrap ErrBadCert (malformed), ErrWrongCA (signature)
// or ErrWrongNetwork.
func ParseRevocations(data []byte, ca *x509.Certificate, network string) (*Revocations, error) {
	if len(data) > maxRevFile {
		return nil, errorf(ErrBadCert, "revocation list of %d bytes is too large", len(data))
	}
	b1, rest := pem.Decode(data)
	if b1 == nil || b1.Type != revBlock {
		return nil, errorf(ErrBadCert, "revocation list: no %s block", revBlock)
	}
	b2, _ := pem.Decode(rest)
	if b2 == nil || b2.Type != revSigBlock {
		return nil, errorf(ErrBadCert, "revocation list: no %s block", revSigBlock)
	}
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errorf(ErrBadCert, "revocation list: the CA key is %T, not ECDSA", ca.PublicKey)
	}
	digest := revDigest(b1.Bytes)
	if !ecdsa.VerifyASN1(pub, digest[:], b2.Bytes) {
		return nil, errorf(ErrWrongCA, "revocation list is not signed by the network CA")
	}
	var r Revocations
	if err := json.Unmarshal(b1.Bytes, &r); err != nil {
		return nil, errorf(ErrBadCert, "revocation list: %w", err)
	}
	if r.Network != network {
		return nil, errorf(ErrWrongNetwork, "revocation list is for network %q, config network is %q", r.Network, network)
	}
	if len(r.Nodes) > maxRevoked || !slices.IsSortedFunc(r.Nodes, nodeid.ID.Compare) {
		return nil, errorf(ErrBadCert, "revocation list: %d nodes, not sorted or too many", len(r.Nodes))
	}
	return &r, nil
}

// LoadRevocations reads and checks a revocation list file.
func LoadRevocations(file string, ca *x509.Certificate, network string) (*Revocations, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r, err := ParseRevocations(data, ca, network)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// RevokeInDir adds ids to the revocation list of the CA in caDir
// (caDir/revoked.pem, created if missing) with the next sequence number,
// and returns its path and the new list.
func RevokeInDir(caDir string, ids []nodeid.ID, now time.Time) (string, *Revocations, error) {
	ca, err := LoadCA(caDir)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(caDir, revokedName)
	cur := &Revocations{Network: ca.Network}
	if data, err := os.ReadFile(path); err == nil {
		if cur, err = ParseRevocations(data, ca.Cert, ca.Network); err != nil {
			return "", nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if !os.IsNotExist(err) {
		return "", nil, err
	}
	next := &Revocations{Network: ca.Network, Seq: cur.Seq + 1, Issued: now, Nodes: append(slices.Clone(cur.Nodes), ids...)}
	out, err := ca.SignRevocations(next)
	if err != nil {
		return "", nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return "", nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", nil, err
	}
	r, err := ParseRevocations(out, ca.Cert, ca.Network)
	return path, r, err
}

// NodeIDOfFile returns the node ID of the certificate in file.
func NodeIDOfFile(file string) (nodeid.ID, error) {
	cert, err := readCertFile(file)
	if err != nil {
		return nodeid.ID{}, err
	}
	return IDOf(cert.PublicKey)
}
