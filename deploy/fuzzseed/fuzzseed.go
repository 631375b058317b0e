// Package fuzzseed keeps the committed seed corpora of fuzz targets
// (testdata/fuzz/<Target>/<name>, the files `go test` runs as subtests) in
// step with the test code that generates them. A package's seed test calls
// Check with the seeds its code makes; with -update-seeds the files are
// rewritten instead:
//
//	go test ./topology -run TestFuzzSeeds -update-seeds
//
// Only corpus files of one []byte value are handled, which is what every
// parser target of ipopd takes.
package fuzzseed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Update is the -update-seeds flag of every test binary that imports this
// package.
var Update = flag.Bool("update-seeds", false, "rewrite the generated fuzz seed corpora under testdata/fuzz")

// Dir is where target's corpus lives, relative to the package under test.
func Dir(target string) string { return filepath.Join("testdata", "fuzz", target) }

// Encode is the corpus file holding one []byte value.
func Encode(data []byte) []byte { return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data) }

// Decode reads a corpus file of one []byte value; ok is false for any
// other file.
func Decode(file []byte) (data []byte, ok bool) {
	body, ok1 := strings.CutPrefix(strings.TrimSpace(string(file)), "go test fuzz v1\n[]byte(")
	body, ok2 := strings.CutSuffix(body, ")")
	s, err := strconv.Unquote(body)
	if !ok1 || !ok2 || err != nil {
		return nil, false
	}
	return []byte(s), true
}

// Check compares target's committed seeds with seeds (file name → value):
// each must exist and hold exactly that value. With -update-seeds it
// writes them instead. Files in the corpus that seeds does not name
// (captured from a kernel, or found by fuzzing) are left alone.
func Check(t testing.TB, target string, seeds map[string][]byte) {
	t.Helper()
	if *Update {
		Write(t, target, seeds)
		return
	}
	for name, want := range seeds {
		path := filepath.Join(Dir(target), name)
		b, err := os.ReadFile(path)
		if got, ok := Decode(b); err != nil || !ok || string(got) != string(want) {
			t.Errorf("%s is missing or stale (%v); regenerate with -update-seeds", path, err)
		}
	}
}

// Write writes seeds into target's corpus.
func Write(t testing.TB, target string, seeds map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		if err := os.WriteFile(filepath.Join(Dir(target), name), Encode(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Read returns the value of one committed seed.
func Read(t testing.TB, target, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(target), name))
	if err != nil {
		t.Fatal(err)
	}
	data, ok := Decode(b)
	if !ok {
		t.Fatalf("seed %s/%s is not a single []byte value", target, name)
	}
	return data
}
