package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ipopd/ipopd/nat/iceserver"
)

// decode converts raw, as found by viper (a string from the file or the
// environment, an int from an int flag, []any for YAML lists), into f's
// field. Errors carry no Source; the caller knows it.
func decode(f field, raw any) *KeyError {
	bad := func(key, value, problem string) *KeyError {
		return &KeyError{Key: key, Value: value, Problem: problem, Allowed: f.allowed}
	}
	switch p := f.ptr.(type) {
	case *[]string:
		items, e := list(f.key, raw)
		if e != nil {
			e.Allowed = f.allowed
			return e
		}
		*p = items
		return nil
	case *[]iceserver.TURN:
		return decodeTURN(f, raw, p)
	case *map[string]string:
		return decodeMap(f, raw, p)
	}

	s, ok := scalar(raw)
	if !ok {
		return bad(f.key, "[...]", "is not a single value")
	}
	switch p := f.ptr.(type) {
	case *string:
		*p = s
	case *Mode:
		*p = Mode(s)
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return bad(f.key, quote(s), "is not an integer")
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			problem := "is not a duration"
			if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
				problem += " (the unit is missing)"
			}
			return bad(f.key, quote(s), problem)
		}
		*p = d
	case *Rate:
		r, problem := parseRate(s)
		if problem != "" {
			return bad(f.key, quote(s), problem)
		}
		*p = r
	case *netip.Prefix:
		if strings.TrimSpace(s) == "" {
			*p = netip.Prefix{}
			return nil
		}
		pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return bad(f.key, quote(s), "is not an address with prefix length")
		}
		*p = pfx
	case *slog.Level:
		l, ok := parseLevel(s)
		if !ok {
			return bad(f.key, quote(s), "is not a log level")
		}
		*p = l
	default:
		panic(fmt.Sprintf("config: key %s has unsupported type %T", f.key, f.ptr))
	}
	return nil
}

// scalar returns raw as a string if it is a single value.
func scalar(raw any) (string, bool) {
	switch v := raw.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case int, int64, float64, bool:
		return fmt.Sprint(v), true
	}
	return "", false
}

// list accepts a YAML list or one comma-separated string (the environment's
// form); blanks around entries are dropped, and so are empty entries.
func list(key string, raw any) ([]string, *KeyError) {
	var out []string
	switch v := raw.(type) {
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, v...)
	case []any:
		for i, it := range v {
			s, ok := scalar(it)
			if !ok {
				return nil, &KeyError{Key: indexed(key, i), Value: "[...]", Problem: "is not a single value"}
			}
			out = append(out, strings.TrimSpace(s))
		}
	case nil:
	default:
		return nil, &KeyError{Key: key, Value: "{...}", Problem: "is not a list"}
	}
	return out, nil
}

// decodeTURN takes a YAML list of mappings or, from the environment, a JSON
// array of {url, username, credential} objects.
func decodeTURN(f field, raw any, p *[]iceserver.TURN) *KeyError {
	var out []iceserver.TURN
	switch v := raw.(type) {
	case string:
		if strings.TrimSpace(v) != "" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.DisallowUnknownFields() // a misspelt "usrname" must not vanish
			if err := dec.Decode(&out); err != nil {
				return &KeyError{Key: f.key, Value: quote(v), Problem: "is not a JSON array of {url, username, credential}: " + err.Error(), Allowed: f.allowed}
			}
		}
	case []any:
		for i, it := range v {
			m, ok := it.(map[string]any)
			if !ok {
				return &KeyError{Key: indexed(f.key, i), Value: "[...]", Problem: "is not a mapping", Allowed: f.allowed}
			}
			var t iceserver.TURN
			for _, k := range turnKeys {
				s, ok := scalar(m[k])
				if !ok {
					return &KeyError{Key: indexed(f.key, i) + "." + k, Value: "[...]", Problem: "is not a single value", Allowed: f.allowed}
				}
				switch k {
				case "url":
					t.URL = s
				case "username":
					t.Username = s
				default:
					t.Credential = s
				}
			}
			out = append(out, t)
		}
	case nil:
	default:
		return &KeyError{Key: f.key, Value: "{...}", Problem: "is not a list", Allowed: f.allowed}
	}
	*p = out
	return nil
}

// decodeMap takes a map from the file walk or, from the environment, a JSON
// object of string values.
func decodeMap(f field, raw any, p *map[string]string) *KeyError {
	out := map[string]string{}
	switch v := raw.(type) {
	case map[string]string:
		for k, s := range v {
			out[k] = s
		}
	case string:
		if strings.TrimSpace(v) != "" {
			if err := json.Unmarshal([]byte(v), &out); err != nil {
				return &KeyError{Key: f.key, Value: quote(v), Problem: "is not a JSON object of name: value strings", Allowed: f.allowed}
			}
		}
	case nil:
	default:
		return &KeyError{Key: f.key, Value: "[...]", Problem: "is not a mapping", Allowed: f.allowed}
	}
	*p = out
	return nil
}

// parseLevel accepts exactly the four levels the contract names; slog's own
// parser also takes "INFO+2", which would be a surprise in a config file.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}
