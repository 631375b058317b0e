package nodeid

// NameRule is what a network or node name may be, as error messages
// say it: names become parts of certificate subjects, file names
// (NAME.crt) and log lines, so they stay plain. ipopd's config, the CA
// tool and certificate checks all apply this one rule.
const NameRule = "a name matching [a-z0-9][a-z0-9._-]{0,62}"

// ValidName reports whether s follows NameRule.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}
