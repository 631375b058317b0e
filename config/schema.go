package config

import (
	"slices"
	"strings"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// The schema is derived from the fields lists in config.go and
// rendezvous.go, so the keys accepted in files, the environment variables
// checked for typos and the keys validated can never disagree.

// field ties one contract key to the struct field it fills.
type field struct {
	key     string // dotted contract key, "igmp.query_interval"
	ptr     any    // one of the pointer types decode handles
	allowed string // shown after "allowed:" when the value is bad
	path    bool   // a file path: relative values from a file are resolved against its directory
}

// kind is the shape a key's value has in YAML.
type kind int

const (
	kindScalar kind = iota // one value
	kindList               // list of values, or one comma-separated string
	kindTURN               // list of {url, username, credential}
	kindMap                // name → value, names chosen by the user
)

func (f field) kind() kind {
	switch f.ptr.(type) {
	case *[]string:
		return kindList
	case *[]iceserver.TURN:
		return kindTURN
	case *map[string]string:
		return kindMap
	}
	return kindScalar
}

// schema is the tree of keys, for the file walk.
type schema struct {
	leaves   map[string]kind
	children map[string][]string // section ("" = top) → child names in field order
	allowed  map[string]string   // leaf → allowed text
	keys     []string            // every leaf and section, for suggestions
}

func newSchema(fields []field) *schema {
	sc := &schema{leaves: map[string]kind{}, children: map[string][]string{}, allowed: map[string]string{}}
	for _, f := range fields {
		sc.leaves[f.key] = f.kind()
		sc.allowed[f.key] = f.allowed
		parent := ""
		for _, part := range strings.Split(f.key, ".") {
			full := join(parent, part)
			if !slices.Contains(sc.children[parent], part) {
				sc.children[parent] = append(sc.children[parent], part)
				sc.keys = append(sc.keys, full)
			}
			parent = full
		}
	}
	return sc
}

func (sc *schema) known(key string) bool {
	_, leaf := sc.leaves[key]
	_, section := sc.children[key]
	return leaf || section
}
