package nodeid

import (
	"regexp"
	"strings"
	"testing"
)

// The rule as NameRule writes it, checked against ValidName.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "alpha", "n1", "edge-2.site_b", "0", strings.Repeat("a", 63)} {
		if !ValidName(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "Mixed", "-a", ".a", "_a", "a b", "a/b", "é", strings.Repeat("a", 64), "a\x00"} {
		if ValidName(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"alpha", "Mixed", "-a", "a.b_c-d", strings.Repeat("z", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != nameRE.MatchString(s) {
			t.Fatalf("ValidName(%q) = %v, NameRule says %v", s, ValidName(s), !ValidName(s))
		}
	})
}
