package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/ipopd/ipopd/config"
	"github.com/ipopd/ipopd/overlay/control"
)

// socketFlags adds --socket and --config; socketPath resolves them.
func socketFlags(fs *pflag.FlagSet) (sock, cfgFile *string) {
	return fs.String("socket", "", "ipopd's control socket (default $IPOPD_CONTROL_SOCKET or /run/ipopd/ipopd.sock)"),
		fs.StringP("config", "c", "", "read control.socket from this ipopd config file")
}

func socketPath(sock, cfgFile string) (string, error) {
	switch {
	case sock != "":
		return sock, nil
	case cfgFile != "":
		cfg, err := config.LoadFile(cfgFile)
		if err != nil {
			return "", err
		}
		return cfg.Control.Socket, nil
	case os.Getenv("IPOPD_CONTROL_SOCKET") != "":
		return os.Getenv("IPOPD_CONTROL_SOCKET"), nil
	}
	return config.Default().Control.Socket, nil
}

// fetch runs a read-only command: it parses --json/--socket/--config,
// asks the daemon with get, and prints the raw JSON when --json was given
// (then it returns nil, nil: nothing left to print).
func fetch[T any](name string, args []string, get func(*control.Client) (*T, []byte, error)) (*T, error) {
	fs := flags(name, name+" [--json] [--socket PATH | --config FILE]")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	sock, cfgFile := socketFlags(fs)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	path, err := socketPath(*sock, *cfgFile)
	if err != nil {
		return nil, err
	}
	v, raw, err := get(control.NewClient(path))
	if err != nil || !*asJSON {
		return v, err
	}
	_, err = os.Stdout.Write(raw)
	return nil, err
}

func status(args []string) error {
	st, err := fetch("status", args, (*control.Client).Status)
	if st == nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "node\t%s\n", st.Name)
	fmt.Fprintf(w, "node id\t%s\n", st.NodeID)
	fmt.Fprintf(w, "network\t%s\n", st.Network)
	fmt.Fprintf(w, "tap\t%s, %s mode, mac %s, mtu %d\n", st.TAP.Name, st.TAP.Mode, st.TAP.MAC, st.TAP.MTU)
	if st.TAP.Bridge != "" {
		fmt.Fprintf(w, "bridge\t%s\n", st.TAP.Bridge)
	}
	fmt.Fprintf(w, "addresses\t%s\n", strings.Join(st.TAP.Addresses, ", "))
	fmt.Fprintf(w, "uptime\t%s (since %s)\n", st.Uptime, st.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(w, "cert expires\t%s\n", st.CertNotAfter.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "tap rx\t%s; %d bytes\n", classCounts(st.TAP.RxFrames), st.TAP.RxBytes)
	if r := st.Ring; r != nil {
		fmt.Fprintf(w, "ring\t%d nodes known, %d links up\n", r.Known, r.Links)
		if r.Predecessor != nil {
			fmt.Fprintf(w, "predecessor\t%s\n", ringNodes([]control.RingNode{*r.Predecessor}))
		}
		fmt.Fprintf(w, "successors\t%s\n", ringNodes(r.Successors))
		fmt.Fprintf(w, "chords\t%s\n", ringNodes(r.Chords))
		fmt.Fprintf(w, "on-demand\t%s\n", ringNodes(r.OnDemand))
	}
	fmt.Fprintf(w, "version\t%s\n", st.Version)
	return w.Flush()
}

// ringNodes renders "beta/1a2b3c4d (up), gamma/… (no link)".
func ringNodes(ns []control.RingNode) string {
	if len(ns) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(ns))
	for _, n := range ns {
		s := dash(n.Name) + "/" + short(n.NodeID)
		if !n.Up {
			s += " (no link)"
		}
		if n.RateBits > 0 {
			s += fmt.Sprintf(" %d kbit/s", n.RateBits/1000)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func classCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
