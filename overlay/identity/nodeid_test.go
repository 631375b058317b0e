package identity

import (
	"errors"
	"testing"
)

func TestIDOfRejectsUnknownKeys(t *testing.T) {
	if _, err := IDOf("not a key"); !errors.Is(err, ErrBadCert) {
		t.Errorf("IDOf(string): %v", err)
	}
}
