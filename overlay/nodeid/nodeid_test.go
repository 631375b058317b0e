package nodeid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i * 7)
	}
	s := id.String()
	if len(s) != 64 || s != strings.ToLower(s) || id.Short() != s[:8] {
		t.Fatalf("String %q Short %q", s, id.Short())
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := Parse(in)
		if err != nil || got != id {
			t.Errorf("Parse(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:], id.Short()} {
		if _, err := Parse(bad); !errors.Is(err, ErrBad) {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
	b, err := json.Marshal(map[string]ID{"id": id})
	if err != nil || string(b) != `{"id":"`+s+`"}` {
		t.Fatalf("json %s %v", b, err)
	}
	var back map[string]ID
	if err := json.Unmarshal(b, &back); err != nil || back["id"] != id {
		t.Errorf("json round trip: %v %v", back, err)
	}
	if !(ID{}).IsZero() || id.IsZero() {
		t.Error("IsZero")
	}
}

func TestOrder(t *testing.T) {
	a, b := ID{0: 1}, ID{0: 1, 31: 1}
	if !a.Less(b) || b.Less(a) || a.Less(a) || a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Error("order of IDs")
	}
}
