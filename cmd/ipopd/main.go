// Command ipopd is the overlay agent: it creates the TAP, acts as its
// multicast router, and links it to the other nodes of its network.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/overlay/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `ipopd: virtual Ethernet overlay agent with first-class multicast.

Usage: ipopd [--config FILE] [flags]

Runs in the foreground until SIGTERM or SIGINT; SIGHUP reloads the config
file (log.level applies at once; other keys need a restart). Every config
key can also be set with an IPOPD_* environment variable, e.g.
IPOPD_TAP_NAME=ipop1. Needs CAP_NET_ADMIN for the TAP.

Flags:
`

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := pflag.NewFlagSet("ipopd", pflag.ContinueOnError)
	config.Flags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage+fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "ipopd: %v (see ipopd --help)\n", err)
		return 2
	}
	if *showVersion {
		fmt.Println("ipopd", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ipopd: unexpected argument %q (see ipopd --help)\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(fs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipopd: %v\n", err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Catch SIGHUP before start-up work, so an early one cannot kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	n, err := node.New(cfg, node.Options{Version: version, Log: log, Level: level})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipopd: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go reloadOnHUP(ctx, hup, fs, n, log)
	if err := n.Run(ctx); err != nil {
		log.Error("ipopd failed", "err", err)
		return 1
	}
	return 0
}

// reloadOnHUP re-reads the config on each SIGHUP; an invalid file is logged
// and the running config kept.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, fs *pflag.FlagSet, n *node.Node, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			cfg, err := config.Load(fs)
			if err != nil {
				log.Error("reload failed; keeping the running config", "err", err)
				continue
			}
			n.Reload(cfg)
		}
	}
}
