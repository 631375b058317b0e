package identity

import (
	"bytes"
	"encoding/asn1"
	"strings"
	"testing"
)

func TestPrefixesExtRoundTrip(t *testing.T) {
	for _, in := range [][]string{nil, {"10.254.0.1/32"}, {"10.254.0.0/24", "fd54::/64", "0.0.0.0/0"}} {
		ext, err := marshalPrefixesExt(prefixes(t, in...))
		if err != nil {
			t.Fatal(err)
		}
		if ext.Critical || !ext.Id.Equal(oidAllowedPrefixes) {
			t.Errorf("extension header %v critical=%v", ext.Id, ext.Critical)
		}
		got, err := parsePrefixesExt(ext.Value)
		if err != nil {
			t.Fatalf("%v: %v", in, err)
		}
		if describePrefixes(got) != describePrefixes(prefixes(t, in...)) {
			t.Errorf("round trip %v -> %v", in, got)
		}
	}
}

// utf8Seq encodes elements as a SEQUENCE OF UTF8String without validation.
func utf8Seq(elems ...string) []byte {
	raw := make([]asn1.RawValue, len(elems))
	for i, e := range elems {
		raw[i] = asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(e)}
	}
	b, err := asn1.Marshal(raw)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParsePrefixesExtRejects(t *testing.T) {
	valid := utf8Seq("10.254.0.1/32")
	printable, _ := asn1.Marshal([]string{"10.254.0.1/32"}) // PrintableString elements
	for name, der := range map[string][]byte{
		"empty":         {},
		"not sequence":  valid[2:],
		"truncated":     valid[:len(valid)-1],
		"trailing":      append(append([]byte{}, valid...), 0),
		"long length":   append([]byte{0x30, 0x81, byte(len(valid) - 2)}, valid[2:]...),
		"printable":     printable,
		"constructed":   {0x30, 0x04, 0x2c, 0x02, 0x31, 0x30},
		"bad utf8":      utf8Seq("\xff/32"),
		"not a prefix":  utf8Seq("hello"),
		"bare address":  utf8Seq("10.254.0.1"),
		"host bits":     utf8Seq("10.254.0.1/24"),
		"upper case v6": utf8Seq("FD54::1/128"),
		"leading zeros": utf8Seq("fd54:0:0::1/128"),
		"v4-mapped":     utf8Seq("::ffff:10.0.0.1/128"),
		"zone":          utf8Seq("fe80::1%eth0/128"),
		"too many":      utf8Seq(strings.Split(strings.Repeat("10.0.0.1/32,", maxPrefixes+1), ",")[:maxPrefixes+1]...),
	} {
		if p, err := parsePrefixesExt(der); err == nil {
			t.Errorf("%s: accepted % x as %v", name, der, p)
		}
	}
	// An empty SEQUENCE is well formed: it allows nothing.
	if p, err := parsePrefixesExt([]byte{0x30, 0x00}); err != nil || len(p) != 0 {
		t.Errorf("empty sequence: %v, %v", p, err)
	}
	if !bytes.Equal(valid[:2], []byte{0x30, byte(len(valid) - 2)}) {
		t.Fatal("test helper produced an unexpected header")
	}
}
