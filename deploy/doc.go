// Package deploy holds what it takes to run ipopd outside `go build`:
// the systemd unit, sample configs, the network-namespace testbed
// (deploy/netns), the lab that runs real ipopd processes in it (deploy/lab),
// the demo (deploy/demo) and the end-to-end tests (deploy/e2e).
//
// Its own test keeps the tree gofmt- and go-vet-clean, so README's test
// command enforces them.
package deploy
