// Command ipopctl inspects a running ipopd and manages the network's
// certificates.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

var version = "dev"

const usage = `ipopctl: control and inspect ipopd.

Usage:
  ipopctl status [--json]                  the node: identity, TAP, uptime
  ipopctl peers [--json]                   links: peer, state, path (host/srflx/relay), RTT, traffic
  ipopctl groups [--json]                  multicast: querier, local members, subscribed nodes, traffic
  ipopctl arp [--json]                     neighbours: IP, MAC, owner node, where learned, age
  ipopctl ca init --network NAME --out DIR  make a network CA (ca.crt, ca.key)
  ipopctl ca revoke --ca DIR (--node ID | --cert FILE) ...
                                           revoke nodes: adds them to DIR/revoked.pem (signed, numbered)
  ipopctl cert issue --ca DIR --name NAME [--ip CIDR ...] [--valid 8760h] [--rendezvous] --out DIR
                                           issue a node certificate (--rendezvous: for ipop-rendezvous)
  ipopctl version

Commands that talk to ipopd take --socket PATH (default: $IPOPD_CONTROL_SOCKET,
else /run/ipopd/ipopd.sock) or --config FILE (uses its control.socket).
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
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "status":
		return status(rest)
	case "peers":
		return peers(rest)
	case "groups":
		return groups(rest)
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
