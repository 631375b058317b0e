package identity

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// File modes. Keys are readable by their owner only; certificates are public.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o700
)

// PEM block types written by this package. Keys are PKCS #8 so the same
// loader serves any key type; SEC 1 "EC PRIVATE KEY" files made by openssl
// are accepted on load too.
const (
	pemCert   = "CERTIFICATE"
	pemPKCS8  = "PRIVATE KEY"
	pemECPriv = "EC PRIVATE KEY"
)

// outFile is one file of a set that is written all or nothing.
type outFile struct {
	path string
	data []byte
	mode fs.FileMode
}

// writeNew writes files that must not exist yet. It checks all of them first,
// so a refusal leaves nothing behind, and creates each with O_EXCL, so a
// concurrent writer cannot be overwritten either. If a later file fails, the
// files already created by this call are removed again.
func writeNew(files ...outFile) error {
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return errorf(ErrExists, "refusing to overwrite %s: file exists", f.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var done []string
	for _, f := range files {
		if err := writeExclusive(f); err != nil {
			for _, p := range done {
				os.Remove(p)
			}
			return err
		}
		done = append(done, f.path)
	}
	return nil
}

func writeExclusive(f outFile) error {
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
	if errors.Is(err, fs.ErrExist) {
		return errorf(ErrExists, "refusing to overwrite %s: file exists", f.path)
	}
	if err != nil {
		return err
	}
	// The umask may have narrowed the mode; set it exactly so a certificate
	// is readable by the daemon's user and a key never by anyone else.
	err = fh.Chmod(f.mode)
	if err == nil {
		_, err = fh.Write(f.data)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.path)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// readCertFile returns the first CERTIFICATE block of a PEM file, parsed.
func readCertFile(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errorf(ErrBadCert, "%s: no PEM %s block", file, pemCert)
		}
		if b.Type != pemCert {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errorf(ErrBadCert, "%s: %w", file, err)
		}
		return cert, nil
	}
}

// readKeyFile returns the first private key block of a PEM file.
func readKeyFile(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errorf(ErrBadCert, "%s: no PEM private key block", file)
		}
		var key any
		switch b.Type {
		case pemPKCS8:
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case pemECPriv:
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, errorf(ErrBadCert, "%s: %w", file, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, errorf(ErrBadCert, "%s: %T cannot sign", file, key)
		}
		return signer, nil
	}
}

// encodeKey returns key as a PKCS #8 PEM block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}

// keyMatches reports whether key is the private half of cert's public key.
// Comparing node IDs compares canonical public-key encodings.
func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	a, err1 := IDOf(key.Public())
	b, err2 := IDOf(cert.PublicKey)
	return err1 == nil && err2 == nil && a == b
}
