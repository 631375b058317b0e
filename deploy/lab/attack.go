package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// AttackResult is the attacker's account of one attack
// (overlay/node/attack.go).
type AttackResult struct {
	Attack   string  `json:"attack"`
	Attempts int     `json:"attempts"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
}

// Attack asks an attacker node (Spec.Attacker) to run attack name with
// the query q (victim, target, n, rate, addresses: see attack.go) and
// waits for it to finish.
func (n *Node) Attack(name string, q url.Values) (*AttackResult, error) {
	if !n.Attacker {
		return nil, fmt.Errorf("lab: %s is not an attacker", n.Name)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", n.Socket+".attack")
	}}, Timeout: 5 * time.Minute}
	resp, err := c.Post("http://attacker/attack/"+name+"?"+q.Encode(), "", nil)
	if err != nil {
		return nil, fmt.Errorf("lab: attack %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lab: attack %s: %s: %s", name, resp.Status, body)
	}
	var r AttackResult
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("lab: attack %s: %w: %s", name, err, body)
	}
	return &r, nil
}

// Usage is a process's CPU time so far and resident memory now.
type Usage struct {
	CPU time.Duration
	RSS int64 // bytes
}

// Usage reads the node's ipopd's CPU time and memory from /proc.
func (n *Node) Usage() (Usage, error) { return ProcUsage(n.Proc.Pid()) }

// ProcUsage reads process pid's CPU time (user + system) and resident
// memory from /proc.
func ProcUsage(pid int) (Usage, error) {
	var u Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command (which may hold spaces) in parentheses.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return u, fmt.Errorf("lab: /proc/%d/stat: %q", pid, s)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.CPU = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			u.RSS = kb << 10
		}
	}
	return u, nil
}
