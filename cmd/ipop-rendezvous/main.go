// Command ipop-rendezvous is the bootstrap server of an ipopd network:
// presence and relayed signaling for the nodes over mutual TLS, and a STUN
// and TURN server for their NAT traversal. It needs no root and no TAP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ipopd/ipopd/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `ipop-rendezvous: signaling, STUN and TURN server for an ipopd network.

Usage: ipop-rendezvous [--config FILE] [flags]

Runs in the foreground until SIGTERM or SIGINT. Nodes connect over mutual
TLS with certificates of the network's CA; give this server its own, with
the rendezvous role (ipopctl cert issue --name rendezvous --rendezvous).
SIGHUP reloads the revocation list (key revoked). Every config key can also be set
with an IPOP_RENDEZVOUS_* environment variable, e.g.
IPOP_RENDEZVOUS_LISTEN=0.0.0.0:7000.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, minus the process: tests call it with their
// own context and writers. It returns the exit code: 0 after a clean stop
// (or --help, --version), 1 when the config or start-up fails, 2 for a
// usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ipop-rendezvous", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RendezvousFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(stderr, usage+fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ipop-rendezvous: %v (see ipop-rendezvous --help)\n", err)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "ipop-rendezvous", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ipop-rendezvous: unexpected argument %q (see ipop-rendezvous --help)\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.LoadRendezvous(fs)
	if err != nil {
		fmt.Fprintf(stderr, "ipop-rendezvous: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Log.Level}))
	r, err := start(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "ipop-rendezvous: %v\n", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if c, err := config.LoadRendezvous(fs); err != nil {
					log.Error("reload failed; keeping the running config", "err", err)
				} else {
					r.reload(c)
				}
			}
		}
	}()
	if err := r.serve(ctx); err != nil {
		log.Error("ipop-rendezvous failed", "err", err)
		return 1
	}
	return 0
}
