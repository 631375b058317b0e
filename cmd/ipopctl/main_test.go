package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/overlay/control"
)

// capture runs ipopctl with args and returns what it printed.
func capture(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() { b, _ := io.ReadAll(r); out <- string(b) }()
	err = run(args)
	w.Close()
	os.Stdout = stdout
	return <-out, err
}

// Global flags are taken before the command as after it, for every
// command that talks to ipopd, in every spelling.
func TestGlobalFlagsBeforeOrAfter(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ipopd.sock")
	srv, err := control.Listen(sock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("/v1/status", func() (any, error) { return control.Status{Name: "marker-status"}, nil })
	srv.Handle("/v1/peers", func() (any, error) { return control.Peers{Rendezvous: "marker-peers"}, nil })
	srv.Handle("/v1/groups", func() (any, error) {
		return control.Groups{Groups: []control.GroupStatus{{Group: "marker-groups"}}}, nil
	})
	srv.Handle("/v1/arp", func() (any, error) {
		return control.Neighbours{Entries: []control.Neighbour{{Owner: "marker-arp"}}}, nil
	})
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	cfg := filepath.Join(t.TempDir(), "ipopd.yaml")
	os.WriteFile(cfg, []byte("network: demo\nnode:\n  name: n1\n  cert: n1.crt\n  key: n1.key\n  ca: ca.crt\ntap:\n  address: 10.254.0.1/16\ncontrol:\n  socket: "+sock+"\n"), 0o600)

	for _, cmd := range []string{"status", "peers", "groups", "arp"} {
		for _, args := range [][]string{
			{cmd, "--json", "--socket", sock},
			{"--socket", sock, cmd, "--json"},
			{"--socket=" + sock, "--json", cmd},
			{"--json", cmd, "--socket=" + sock},
			{"--config", cfg, cmd, "--json"},
			{"-c", cfg, "--json", cmd},
		} {
			out, err := capture(t, args...)
			if err != nil || !strings.Contains(out, "marker-"+cmd) {
				t.Errorf("ipopctl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	for _, args := range [][]string{{"--bogus", "status"}, {"--socket"}, {"--json"}, {"--socket", sock, "ca", "init", "--network", "n", "--out", t.TempDir()}} {
		if _, err := capture(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("ipopctl %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

// ipopctl refuses the names ipopd refuses, in the same words.
func TestNamesAsTheDaemonRules(t *testing.T) {
	dir := t.TempDir()
	if _, err := capture(t, "ca", "init", "--network", "demo", "--out", dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Mixed", "-a", "a b", "a_b", "n1", strings.Repeat("x", 64)} {
		c := config.Default()
		c.Network, c.Node.Name = "demo", name
		daemonErr := c.Validate()
		_, err := capture(t, "cert", "issue", "--ca", dir, "--name", name, "--out", t.TempDir())
		refusedByDaemon := daemonErr != nil && strings.Contains(daemonErr.Error(), "node.name")
		if refusedByDaemon != (err != nil) {
			t.Errorf("name %q: ipopd says %v, ipopctl cert issue says %v", name, daemonErr, err)
			continue
		}
		if err != nil {
			_, want, _ := strings.Cut(daemonErr.Error(), "node.name: ")
			if _, got, _ := strings.Cut(err.Error(), "--name "); got != want {
				t.Errorf("name %q: ipopctl says %q, ipopd %q", name, got, want)
			}
		}
	}
}

// ipopctl tree GROUP: this node's place in the group's tree, with the
// global flags before or after, and clear refusals of what is no group.
func TestTreeCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ipopd.sock")
	srv, err := control.Listen(sock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("/v1/groups", func() (any, error) {
		return control.Groups{Groups: []control.GroupStatus{{Group: "239.1.1.1", Mode: "tree", Remote: []control.Subscription{{Name: "b"}},
			Tree: &control.TreeStatus{Parent: &control.TreeNode{Name: "p2", NodeID: "aabbccdd00"}, Depth: 2, Key: "0011223344",
				Children: []control.TreeNode{{Name: "c1", NodeID: "1122334455"}}}}}}, nil
	})
	walks := 0
	srv.HandleQuery("/v1/tree", func(q url.Values) (any, error) {
		walks++
		if q.Get("group") != "239.1.1.1" {
			return nil, fmt.Errorf("%w: group %q", control.ErrBadRequest, q.Get("group"))
		}
		node := func(name, id string) control.TreeNode { return control.TreeNode{Name: name, NodeID: id} }
		p2, me, c1, c9 := node("p2", "aabbccdd00"), node("me", "5566778899"), node("c1", "1122334455"), node("c9", "9999999999")
		return control.TreeWalk{Group: "239.1.1.1", Unanswered: []control.TreeNode{c9}, Nodes: []control.TreeWalkNode{
			{TreeNode: me, Here: true, On: true, Depth: 2, Parent: &p2, Children: []control.TreeNode{c1}},
			{TreeNode: p2, On: true, Root: true, Children: []control.TreeNode{me, c9}},
			{TreeNode: c1, On: true, Depth: 3, Parent: &me, Children: []control.TreeNode{}},
		}}, nil
	})
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	for _, args := range [][]string{{"tree", "239.1.1.1", "--socket", sock}, {"--socket", sock, "tree", "239.1.1.1"}} {
		out, err := capture(t, args...)
		if err != nil || !strings.Contains(out, "depth 2, parent p2") || !strings.Contains(out, "child c1") || !strings.Contains(out, "sends it as: tree") {
			t.Errorf("ipopctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// The whole tree: from the root, children indented, the one that
		// did not answer named.
		for _, want := range []string{"no answer from c9", "\n  p2 (root)\n    me (depth 2, this node)\n      c1 (depth 3)\n    c9: no answer"} {
			if !strings.Contains(out, want) {
				t.Errorf("ipopctl %s: no %q in\n%s", strings.Join(args, " "), want, out)
			}
		}
	}
	before := walks
	if out, err := capture(t, "tree", "239.1.1.1", "--here", "--socket", sock); err != nil || walks != before || strings.Contains(out, "whole tree") {
		t.Errorf("--here: %v, walks %d → %d\n%s", err, before, walks, out)
	}
	out, err := capture(t, "tree", "239.1.1.1", "--json", "--socket", sock)
	var js struct {
		Here *control.GroupStatus
		Walk *control.TreeWalk
	}
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || js.Here == nil || js.Walk == nil || len(js.Walk.Nodes) != 3 {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if out, err := capture(t, "tree", "239.9.9.9", "--socket", sock); err != nil || !strings.Contains(out, "not known here") {
		t.Errorf("an unknown group: %v\n%s", err, out)
	}
	if out, err := capture(t, "groups", "--socket", sock); err != nil || !strings.Contains(out, "parent p2 (depth 2), 1 child") {
		t.Errorf("groups: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"tree", "--socket", sock}, {"tree", "10.0.0.1", "--socket", sock}, {"tree", "nonsense"}, {"tree", "239.1.1.1", "239.1.1.2"}} {
		if _, err := capture(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("ipopctl %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
