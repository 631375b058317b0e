package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const (
	netnsDir     = "/run/netns" // where ip(8) bind-mounts named namespaces
	schemePrefix = "ipt"
)

// scheme matches the names this package gives namespaces; group 1 is the pid
// of the test binary that made it.
var scheme = regexp.MustCompile(`^` + schemePrefix + `([0-9]+)x[0-9]+-`)

// Leftovers returns the named namespaces that follow this package's naming
// scheme, of every testbed of every process, whether alive or not.
func Leftovers() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	var names []string
	for _, e := range ents {
		if scheme.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// removeStale deletes the namespaces of test binaries that are gone. A live
// pid keeps its namespaces even if it was reused by an unrelated process;
// that leaks a namespace until the pid dies, but never deletes a live test's.
func removeStale() error {
	names, err := Leftovers()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		pid, err := strconv.Atoi(scheme.FindStringSubmatch(name)[1])
		if err != nil || pidAlive(pid) {
			continue
		}
		if err := removeNamespace(name); err != nil {
			errs = append(errs, fmt.Errorf("stale namespace: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeNamespace kills every process in namespace name and deletes it.
// Deleting only unmounts the name; the kernel frees the namespace, and with
// it the veths inside, once no process or socket refers to it any more.
// A namespace that is gone at the end counts as removed, whatever failed on
// the way: another test binary's New may be removing the same stale one.
func removeNamespace(name string) error {
	kerr := killAll(name)
	derr := ip("netns", "delete", name)
	if _, err := os.Stat(filepath.Join(netnsDir, name)); errors.Is(err, fs.ErrNotExist) {
		return kerr // processes that survived still matter
	}
	return errors.Join(kerr, derr)
}

// killAll sends SIGKILL to every process in namespace name: daemons' children
// and anything a Run command left in the background. It never kills the test
// binary itself, whose main thread may sit in the namespace during Host.Do.
func killAll(name string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, err := run(ctx, "ip", "netns", "pids", name)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, name)); errors.Is(serr, fs.ErrNotExist) {
			return nil // deleted meanwhile, by another test binary's New
		}
		return err
	}
	var errs []error
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := killPid(pid); err != nil && pidAlive(pid) {
			errs = append(errs, fmt.Errorf("netns: kill %d in %s: %w", pid, name, err))
		}
	}
	return errors.Join(errs...)
}
