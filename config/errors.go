package config

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	// ErrInvalid is wrapped by every error about a bad value, key, variable
	// or YAML syntax, so callers can tell "fix the config" from I/O trouble.
	ErrInvalid = errors.New("invalid config")
	// ErrNotFound is wrapped when the config file does not exist.
	ErrNotFound = errors.New("config file not found")
)

// problemUnknown marks a KeyError about a key or variable the contract does
// not have; such errors print the name, not a value.
const problemUnknown = "unknown key"

// KeyError is one bad config entry. Error() gives one line that names where
// it came from, the key, the value and what would have been accepted:
//
//	config: ipopd.yaml:7: tap.mtu: 100 is out of range; allowed: 576..9000
//	config: ipopd.yaml:5: unknown key "tap.mdoe"; did you mean "tap.mode"?
type KeyError struct {
	// Source is where the value came from: "ipopd.yaml:7" (file and line),
	// "ipopd.yaml" (a default that the file left in place), "env IPOPD_TAP_MTU"
	// or "flag --tap-mtu"; "" for a Config built in code.
	Source string
	// Key is the dotted contract key; list entries are indexed
	// ("rendezvous[1]", "turn[0].username"). For an unknown environment
	// variable it is the variable's name.
	Key string
	// Value is the offending value as displayed: numbers plain, strings
	// quoted. Empty only for unknown keys.
	Value string
	// Problem says what is wrong ("is out of range", "unknown key").
	Problem string
	// Allowed says what would be accepted.
	Allowed string
	// Suggest is the nearest known key for an unknown one, if any is close.
	Suggest string
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Value == "" {
		b.WriteString(e.Problem)
		b.WriteString(" ")
		b.WriteString(quote(e.Key))
	} else {
		b.WriteString(e.Key)
		b.WriteString(": ")
		b.WriteString(e.Value)
		b.WriteString(" ")
		b.WriteString(e.Problem)
	}
	switch {
	case e.Suggest != "":
		b.WriteString("; did you mean ")
		b.WriteString(quote(e.Suggest))
		b.WriteString("?")
	case e.Allowed != "":
		b.WriteString("; allowed: ")
		b.WriteString(e.Allowed)
	}
	// Problems may quote other packages' errors; the contract is one line.
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// Unwrap makes every KeyError match ErrInvalid.
func (e *KeyError) Unwrap() error { return ErrInvalid }

// maxShown bounds how much of a value an error repeats, so a pasted
// certificate or a fuzzed megabyte does not become the log line.
const maxShown = 64

// quote displays a string value: always quoted, so "" and " x" are visible,
// and cut to maxShown bytes on a rune boundary.
func quote(s string) string {
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
