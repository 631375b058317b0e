// Command ipopctl inspects a running ipopd and manages the network's
// certificates.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

var version = "dev"

const usage = `ipopctl: control and inspect ipopd.

Usage:
  ipopctl status [--json]                  the node: identity, TAP, uptime
  ipopctl peers [--json]                   links: peer, state, path (host/srflx/relay), RTT, traffic
  ipopctl groups [--json]                  multicast: querier, local members, subscribed nodes, how sent, tree role, traffic
  ipopctl tree GROUP [--here] [--json]     the group's distribution tree: this node's place, then the whole tree as its nodes answer
  ipopctl arp [--json]                     neighbours: IP, MAC, owner node, where learned, age
  ipopctl ca init --network NAME --out DIR  make a network CA (ca.crt, ca.key)
  ipopctl ca revoke --ca DIR (--node ID | --cert FILE) ...
                                           revoke nodes: adds them to DIR/revoked.pem (signed, numbered)
  ipopctl cert issue --ca DIR --name NAME [--ip CIDR ...] [--valid 8760h] [--rendezvous] --out DIR
                                           issue a node certificate (--rendezvous: for ipop-rendezvous)
  ipopctl version

Commands that talk to ipopd take --socket PATH (default: $IPOPD_CONTROL_SOCKET,
else /run/ipopd/ipopd.sock) or --config FILE (uses its control.socket), and
--json; these may come before the command too (ipopctl --socket PATH peers).
Run 'ipopctl COMMAND --help' for a command's flags.
`

// errUsage marks errors that are the caller's words, not the system's.
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ipopctl:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	global, args, err := leadingFlags(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		if len(global) > 0 {
			return fmt.Errorf("%w: %s given, but no command", errUsage, global[0])
		}
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	if len(global) > 0 {
		// Global flags go to the command, before its own words: a
		// command that has no use for one refuses it as it would after.
		if i := commandWords(cmd, rest); i > 0 {
			rest = append(append(append([]string{}, rest[:i]...), global...), rest[i:]...)
		} else {
			rest = append(append([]string{}, global...), rest...)
		}
	}
	switch cmd {
	case "status":
		return status(rest)
	case "peers":
		return peers(rest)
	case "groups":
		return groups(rest)
	case "tree":
		return tree(rest)
	case "arp":
		return neighbours(rest)
	case "ca":
		switch {
		case len(rest) > 0 && rest[0] == "init":
			return caInit(rest[1:])
		case len(rest) > 0 && rest[0] == "revoke":
			return caRevoke(rest[1:])
		}
		return fmt.Errorf("%w: ipopctl ca init --network NAME --out DIR, or ipopctl ca revoke --ca DIR --node ID", errUsage)
	case "cert":
		if len(rest) == 0 || rest[0] != "issue" {
			return fmt.Errorf("%w: ipopctl cert issue --ca DIR --name NAME [--ip CIDR ...] --out DIR", errUsage)
		}
		return certIssue(rest[1:])
	case "version", "--version":
		fmt.Println("ipopctl", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q (see ipopctl --help)", errUsage, cmd)
}

// flags returns a flag set for a subcommand whose parse errors are usage errors.
func flags(name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: ipopctl %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// globalFlags are the flags that may come before the command, and whether
// each takes a value.
var globalFlags = map[string]bool{"--socket": true, "--config": true, "-c": true, "--json": false}

// leadingFlags takes the global flags before the command off args: they
// are returned apart (as words to hand to the command), with what
// remains, command first. --help and --version before any command stay
// where they are (they are commands of their own).
func leadingFlags(args []string) (global, rest []string, err error) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		switch a {
		case "-h", "--help", "--version":
			return global, args, nil
		}
		name, _, hasValue := strings.Cut(a, "=")
		takesValue, ok := globalFlags[name]
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("%w: unknown flag %s before the command (before it: --socket, --config, --json; see ipopctl --help)", errUsage, a)
		case takesValue && !hasValue:
			if len(args) < 2 {
				return nil, nil, fmt.Errorf("%w: flag %s needs a value", errUsage, a)
			}
			global, args = append(global, a, args[1]), args[2:]
		default:
			global, args = append(global, a), args[1:]
		}
	}
	return global, args, nil
}

// commandWords counts the words after cmd that name a subcommand
// (ca init, cert issue), which the global flags go after.
func commandWords(cmd string, rest []string) int {
	if (cmd == "ca" || cmd == "cert" || cmd == "tree") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		return 1
	}
	return 0
}
