package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ipopd/ipopd/overlay/identity"
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
	fs := flags("cert issue", "cert issue --ca DIR --name NAME [--ip CIDR ...] [--valid 8760h] --out DIR")
	caDir := fs.String("ca", "", "directory holding ca.crt and ca.key (required)")
	name := fs.String("name", "", "node name (required), e.g. alpha")
	ips := fs.StringArray("ip", nil, "overlay address(es) the node may use, as CIDR; repeatable. 10.254.0.1/32 allows one address, 10.254.0.0/24 a range")
	valid := fs.Duration("valid", 365*24*time.Hour, "how long the certificate is valid")
	out := fs.String("out", "", "directory for NAME.crt and NAME.key (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caDir == "" || *name == "" || *out == "" {
		return fmt.Errorf("%w: cert issue needs --ca, --name and --out", errUsage)
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
	crt, key, id, err := identity.IssueToDir(*caDir, *name, prefixes, *valid, *out)
	if err != nil {
		return err
	}
	fmt.Printf("certificate for %s written to %s and %s\nnode id %s\n", *name, crt, key, id)
	return nil
}
