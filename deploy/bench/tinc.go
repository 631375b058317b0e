package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ipopd/ipopd/deploy/netns"
)

// tincMTU matches tinc0 to ipop0's default MTU, so both overlays see the
// same frames (a 1400-byte datagram is two IP fragments on either).
const tincMTU = 1400

// tincAvailable reports whether tincd is installed; the tinc path is
// optional (Debian package tinc, the 1.0 series).
func tincAvailable() bool {
	_, err := exec.LookPath("tincd")
	return err == nil
}

// tincHostVars go into both host files: tinc 1.0 takes a link's cipher and
// digest from the peer's host file. AES and SHA-256 instead of the default
// Blowfish and SHA-1 compare like with like against ipopd's AES-GCM. PMTU
// discovery is off so that large frames go over UDP from the first moment
// instead of over the TCP meta connection until probing settles.
const tincHostVars = "Port = 655\nCipher = aes-256-cbc\nDigest = sha256\nPMTUDiscovery = no\n"

// setupTinc runs tincd in switch mode on two public hosts (overlay
// 10.253.0.1 and .2 on tinc0) and waits until one can ping the other.
func setupTinc(tb *netns.Testbed) (*path, error) {
	names := []string{"alpha", "beta"}
	var hosts [2]*netns.Host
	var dirs [2]string
	var pubs [2][]byte
	for i, name := range names {
		h, err := tb.AddPublicHost("tinc-" + name)
		if err != nil {
			return nil, err
		}
		hosts[i] = h
		dirs[i] = filepath.Join(tb.Dir(), "tinc-"+name)
		if err := os.MkdirAll(filepath.Join(dirs[i], "hosts"), 0o700); err != nil {
			return nil, err
		}
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		pubs[i] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})
		conf := fmt.Sprintf("Name = %s\nMode = switch\nDeviceType = tap\nInterface = tinc0\nAddressFamily = ipv4\n", name)
		if i == 0 {
			conf += "ConnectTo = " + names[1] + "\n"
		}
		up := fmt.Sprintf("#!/bin/sh\nip link set \"$INTERFACE\" mtu %d up\nip addr add 10.253.0.%d/24 dev \"$INTERFACE\"\n", tincMTU, i+1)
		for file, text := range map[string]string{"rsa_key.priv": string(priv), "tinc.conf": conf, "tinc-up": up} {
			mode := os.FileMode(0o600)
			if file == "tinc-up" {
				mode = 0o700
			}
			if err := os.WriteFile(filepath.Join(dirs[i], file), []byte(text), mode); err != nil {
				return nil, err
			}
		}
	}
	// Each node needs both host files: its own, and its peer's to check it.
	for _, dir := range dirs {
		for j, name := range names {
			text := fmt.Sprintf("Address = %s\n%s%s", hosts[j].Addr, tincHostVars, pubs[j])
			if err := os.WriteFile(filepath.Join(dir, "hosts", name), []byte(text), 0o600); err != nil {
				return nil, err
			}
		}
	}
	var daemons []daemon
	for i, h := range hosts {
		// -D keeps tincd in the foreground (so Proc's pid is tincd's) and
		// logging to stderr; each needs its own pid file.
		p, err := h.Start("tincd", nil, "tincd", "-c", dirs[i], "-D", "--pidfile", filepath.Join(dirs[i], "tinc.pid"))
		if err != nil {
			return nil, err
		}
		daemons = append(daemons, daemon{"tincd " + string(rune('A'+i)), p})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := hosts[0].Run("ping", "-n", "-c", "1", "-W", "1", "10.253.0.2"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench: tinc: no ping across tinc0 within 30s:\n%s\n%s", daemons[0].Proc.Log(), daemons[1].Proc.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return &path{Name: "tinc", Snd: hosts[0], Rcv: hosts[1], SndIf: "tinc0", RcvIf: "tinc0", Daemons: daemons}, nil
}
