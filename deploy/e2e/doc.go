// Package e2e holds ipopd's end-to-end tests: real ipopd and ipopctl
// processes in network namespaces, the kernel's own IGMP/MLD, real apps.
// They need root; without it they skip, and with IPOP_NETNS=1 they fail.
package e2e
