// Package netns builds throw-away network topologies out of Linux network
// namespaces for ipopd's root-only integration tests (DESIGN.md, "Tests",
// item 3): real TAP devices, the kernel's own IGMP/MLD, iptables NAT routers
// and real applications, with nothing reaching the machine's own network.
//
// A Testbed owns every namespace, veth pair and process it creates:
//
//	             ns "inet": bridge br0 198.18.0.1/15 ("the Internet")
//	  ┌──────────────────────┬─────────────┴───────────┬─────────── ...
//	eth0 198.18.0.10       eth0 198.18.0.11          eth0 198.18.0.12
//	public host            NAT router, LAN k=1       NAT router, LAN k=2
//	(AddPublicHost)        eth1 10.1.0.1/24 (bridge) eth1 10.2.0.1/24
//	                          ┌───────┴───────┐            │
//	                       eth0 10.1.0.2   eth0 10.1.0.3   eth0 10.2.0.2
//	                       (AddNATHost)    (AddHostBehind) (AddNATHost)
//
// The underlay is one flat 198.18.0.0/15 segment (RFC 2544's benchmarking
// range) so public hosts and routers reach each other on-link and need no
// default route; no namespace has a link to the root namespace, so a
// misaddressed packet has nowhere to go but the bit bucket.
//
// NAT routers use iptables MASQUERADE on eth0. Plain MASQUERADE keeps the
// source port and reuses one mapping for every destination while no other
// flow claims that port: endpoint-independent mapping. With --random-fully
// every new flow gets a fresh random port: endpoint-dependent ("symmetric")
// mapping. Filtering is conntrack's in both cases, so only replies to a flow
// the inside host started come back (address-and-port-dependent filtering).
//
// Namespace names are "ipt<pid>x<seq>-<testbed>-<host>": the pid and a
// per-process sequence number let test packages run in parallel, and New
// deletes namespaces of that scheme whose pid is no longer alive, together
// with any process still inside them, which is what a crashed or killed test
// binary leaves behind. Processes started with Host.Start also get SIGKILL
// from the kernel when the test binary dies.
package netns
