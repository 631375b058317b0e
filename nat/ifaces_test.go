package nat

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/pion/transport/v2"
)

// fakeInterfaces is a host with loopback, an uplink, ipopd's TAP, a
// container bridge and a veth, each up with one IPv4 address.
func fakeInterfaces() []*transport.Interface {
	mk := func(i int, name string, flags net.Flags, cidr string) *transport.Interface {
		ifc := transport.NewInterface(net.Interface{Index: i, Name: name, Flags: flags | net.FlagUp})
		ip, ipnet, _ := net.ParseCIDR(cidr)
		ipnet.IP = ip
		ifc.AddAddress(ipnet)
		return ifc
	}
	return []*transport.Interface{
		mk(1, "lo", net.FlagLoopback, "127.0.0.1/8"),
		mk(2, "eth0", 0, "198.18.0.2/24"),
		mk(3, "ipop0", 0, "10.254.0.1/16"),
		mk(4, "docker0", 0, "172.17.0.1/16"),
		mk(5, "veth1a2b", 0, "172.17.0.5/16"),
	}
}

func names(ifs []*transport.Interface) []string {
	var out []string
	for _, ifc := range ifs {
		out = append(out, ifc.Name)
	}
	return out
}

func TestInterfaceFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want []string
	}{
		{"all but loopback", Settings{}, []string{"eth0", "ipop0", "docker0", "veth1a2b"}},
		{"with loopback", Settings{IncludeLoopback: true}, []string{"lo", "eth0", "ipop0", "docker0", "veth1a2b"}},
		{"TAP excluded", Settings{Exclude: []string{"ipop0"}}, []string{"eth0", "docker0", "veth1a2b"}},
		{"patterns excluded", Settings{Exclude: []string{"ipop0", "veth*", "docker?"}}, []string{"eth0"}},
		{"only listed", Settings{Interfaces: []string{"eth0"}}, []string{"eth0"}},
		{"exclude beats listed", Settings{Interfaces: []string{"eth0", "ipop0"}, Exclude: []string{"ipop0"}}, []string{"eth0"}},
		{"listed loopback needs IncludeLoopback", Settings{Interfaces: []string{"lo"}}, nil},
		{"loopback only", Settings{Interfaces: []string{"lo"}, IncludeLoopback: true}, []string{"lo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newIfaceRule(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			ifs := fakeInterfaces()
			if got := names(r.filterInterfaces(ifs)); !slices.Equal(got, tc.want) {
				t.Errorf("filtered %v, want %v", got, tc.want)
			}
			if len(ifs) != 5 {
				t.Error("filterInterfaces modified its input")
			}
		})
	}
}

// A loopback address on a non-loopback interface is dropped unless
// loopback is included; the interface itself stays.
func TestInterfaceFilterAddresses(t *testing.T) {
	ifc := transport.NewInterface(net.Interface{Index: 7, Name: "dummy0", Flags: net.FlagUp})
	ifc.AddAddress(&net.IPNet{IP: net.IPv4(127, 0, 0, 2), Mask: net.CIDRMask(8, 32)})
	ifc.AddAddress(&net.IPNet{IP: net.IPv4(198, 18, 0, 9), Mask: net.CIDRMask(24, 32)})
	r, _ := newIfaceRule(Settings{})
	got := hostIPv4s(r.filterInterfaces([]*transport.Interface{ifc}))
	if len(got) != 1 || !got[0].Equal(net.IPv4(198, 18, 0, 9)) {
		t.Errorf("host addresses %v, want [198.18.0.9]", got)
	}
}

// The Net handed to pion hides what the rule leaves out, by listing and by
// lookup.
func TestFilteredNet(t *testing.T) {
	r, _ := newIfaceRule(Settings{Exclude: []string{"ipop0"}})
	n := &filteredNet{ifs: r.filterInterfaces(fakeInterfaces())}
	if _, err := n.InterfaceByName("ipop0"); !errors.Is(err, transport.ErrInterfaceNotFound) {
		t.Errorf("InterfaceByName(ipop0) = %v, want not found", err)
	}
	if _, err := n.InterfaceByIndex(3); !errors.Is(err, transport.ErrInterfaceNotFound) {
		t.Errorf("InterfaceByIndex(3) = %v, want not found", err)
	}
	if ifc, err := n.InterfaceByName("eth0"); err != nil || ifc.Index != 2 {
		t.Errorf("InterfaceByName(eth0) = %v, %v", ifc, err)
	}
	ifs, _ := n.Interfaces()
	if slices.Contains(names(ifs), "ipop0") {
		t.Errorf("Interfaces() lists the excluded TAP: %v", names(ifs))
	}
	if r.allowsName("ipop0") || !r.allowsName("eth0") {
		t.Error("agent InterfaceFilter disagrees with the Net")
	}
}

func TestInterfaceBadPattern(t *testing.T) {
	for _, s := range []Settings{{Interfaces: []string{"["}}, {Exclude: []string{""}}} {
		if _, err := newIfaceRule(s); err == nil {
			t.Errorf("newIfaceRule(%+v) accepted a bad pattern", s)
		}
	}
}
