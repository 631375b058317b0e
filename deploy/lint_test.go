package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGofmtVet runs gofmt and go vet over the whole module: the project's
// style gate, part of the one test command CI runs.
func TestGofmtVet(t *testing.T) {
	if testing.Short() {
		t.Skip("lint skipped in -short mode")
	}
	out, err := exec.Command("gofmt", "-l", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("gofmt: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("gofmt would change:\n%s", s)
	}
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = ".."
	if out, err := vet.CombinedOutput(); err != nil {
		t.Errorf("go vet ./...: %v\n%s", err, out)
	}
}
