package identity

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNodeIDText(t *testing.T) {
	var id NodeID
	for i := range id {
		id[i] = byte(i * 7)
	}
	s := id.String()
	if len(s) != 64 || s != strings.ToLower(s) || id.Short() != s[:8] {
		t.Fatalf("String %q Short %q", s, id.Short())
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseNodeID(in)
		if err != nil || got != id {
			t.Errorf("ParseNodeID(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:], id.Short()} {
		if _, err := ParseNodeID(bad); !errors.Is(err, ErrBadNodeID) {
			t.Errorf("ParseNodeID(%q): %v", bad, err)
		}
	}
	b, err := json.Marshal(map[string]NodeID{"id": id})
	if err != nil || string(b) != `{"id":"`+s+`"}` {
		t.Fatalf("json %s %v", b, err)
	}
	var back map[string]NodeID
	if err := json.Unmarshal(b, &back); err != nil || back["id"] != id {
		t.Errorf("json round trip: %v %v", back, err)
	}
	if !(NodeID{}).IsZero() || id.IsZero() {
		t.Error("IsZero")
	}
}

func TestIDOfRejectsUnknownKeys(t *testing.T) {
	if _, err := IDOf("not a key"); !errors.Is(err, ErrBadCert) {
		t.Errorf("IDOf(string): %v", err)
	}
}
