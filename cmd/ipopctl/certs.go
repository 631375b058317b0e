package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
	"github.com/ipopd/ipopd/overlay/nodeid"
)

func caInit(args []string) error {
	fs := flags("ca init", "ca init --network NAME --out DIR [--valid 87600h]")
	network := fs.String("network", "", "network name (required); node certificates and configs must name the same")
	out := fs.String("out", "", "directory for ca.crt and ca.key (required; created 0700)")
	valid := fs.Duration("valid", 10*365*24*time.Hour, "how long the CA is valid")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *network == "" || *out == "" {
		return fmt.Errorf("%w: ca init needs --network and --out", errUsage)
	}
	if err := checkName("--network", *network); err != nil {
		return err
	}
	if *valid <= 0 {
		return fmt.Errorf("%w: --valid %s must be positive", errUsage, *valid)
	}
	ca, err := identity.InitCA(*network, *out, *valid)
	if err != nil {
		return err
	}
	fmt.Printf("CA for network %q written to %s/ca.crt and %s/ca.key (valid until %s)\n",
		*network, *out, *out, ca.Cert.NotAfter.UTC().Format("2006-01-02"))
	fmt.Println("Keep ca.key secret and off the nodes; give each node ca.crt.")
	return nil
}

func certIssue(args []string) error {
	fs := flags("cert issue", "cert issue --ca DIR --name NAME [--ip CIDR ...] [--valid 8760h] [--rendezvous] --out DIR")
	caDir := fs.String("ca", "", "directory holding ca.crt and ca.key (required)")
	name := fs.String("name", "", "node name (required), e.g. alpha")
	ips := fs.StringArray("ip", nil, "overlay address(es) the node may use, as CIDR; repeatable. 10.254.0.1/32 allows one address, 10.254.0.0/24 a range")
	valid := fs.Duration("valid", 365*24*time.Hour, "how long the certificate is valid")
	out := fs.String("out", "", "directory for NAME.crt and NAME.key (required)")
	rendezvous := fs.Bool("rendezvous", false, "a certificate for ipop-rendezvous (the rendezvous role, which nodes require of their server)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caDir == "" || *name == "" || *out == "" {
		return fmt.Errorf("%w: cert issue needs --ca, --name and --out", errUsage)
	}
	if err := checkName("--name", *name); err != nil {
		return err
	}
	role := ""
	if *rendezvous {
		role = identity.RoleRendezvous
	}
	if *valid <= 0 {
		return fmt.Errorf("%w: --valid %s must be positive", errUsage, *valid)
	}
	var prefixes []netip.Prefix
	for _, s := range *ips {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%w: --ip %q is not a CIDR like 10.254.0.1/32 or fd54::1/128", errUsage, s)
		}
		prefixes = append(prefixes, p)
	}
	crt, key, id, err := identity.IssueToDirRole(*caDir, *name, prefixes, role, *valid, *out)
	if err != nil {
		return err
	}
	fmt.Printf("certificate for %s written to %s and %s\nnode id %s\n", *name, crt, key, id)
	return nil
}

func caRevoke(args []string) error {
	fs := flags("ca revoke", "ca revoke --ca DIR (--node ID | --cert FILE) ...")
	caDir := fs.String("ca", "", "directory holding ca.crt and ca.key (required); the list is DIR/revoked.pem")
	ids := fs.StringArray("node", nil, "node ID to revoke (64 hex digits, as ipopctl status shows); repeatable")
	certs := fs.StringArray("cert", nil, "node certificate whose node to revoke; repeatable")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caDir == "" || len(*ids)+len(*certs) == 0 {
		return fmt.Errorf("%w: ca revoke needs --ca and at least one --node or --cert", errUsage)
	}
	var revoke []nodeid.ID
	for _, s := range *ids {
		id, err := nodeid.Parse(s)
		if err != nil {
			return fmt.Errorf("%w: --node %q: want the 64 hex digits of a node ID", errUsage, s)
		}
		revoke = append(revoke, id)
	}
	for _, f := range *certs {
		id, err := identity.NodeIDOfFile(f)
		if err != nil {
			return err
		}
		revoke = append(revoke, id)
	}
	path, r, err := identity.RevokeInDir(*caDir, revoke, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("revocation list %s: %d nodes revoked (list number %d)\n", path, len(r.Nodes), r.Seq)
	fmt.Println("Give it to the rendezvous (revoked:) and the nodes (trust.revoked), then send them SIGHUP.")
	return nil
}

// checkName applies the rule ipopd applies to network and node names
// (node.name, network), in the words its config errors use, so the CA
// tool refuses exactly what the daemon would.
func checkName(flag, s string) error {
	if !nodeid.ValidName(s) {
		return fmt.Errorf("%w: %s %q is not a valid name; allowed: %s", errUsage, flag, s, nodeid.NameRule)
	}
	return nil
}
