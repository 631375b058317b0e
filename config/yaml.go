package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The file is parsed here, not by viper, because only the yaml.Node tree
// has line numbers, keeps duplicate keys visible and keeps the case of map
// keys (viper lowercases them, which would corrupt TURN user names). The
// walk checks the file against the key schema and hands viper a plain tree
// whose leaves are strings, so every source reaches the decoders in the
// same form as environment variables do.

// doc is a config file that matched the schema.
type doc struct {
	name  string                       // the path as given, for messages
	tree  map[string]any               // for viper: sections, string leaves, []any lists
	lines map[string]int               // key → line of the key in the file
	maps  map[string]map[string]string // kindMap keys, case preserved
}

// turnKeys are the keys of one turn entry, in display order.
var turnKeys = []string{"url", "username", "credential"}

// yamlLine picks the line number out of yaml's syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDoc parses data and checks every key against sc.
func parseDoc(name string, data []byte, sc *schema) (d *doc, err error) {
	var root yaml.Node
	if err := unmarshal(data, &root); err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, invalidf("config: %s:%s: invalid YAML: %s", name, m[1], m[2])
		}
		return nil, invalidf("config: %s: invalid YAML: %s", name, strings.TrimPrefix(msg, "yaml: "))
	}
	d = &doc{name: name, lines: map[string]int{}, maps: map[string]map[string]string{}}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	if top.Kind == 0 { // empty file
		d.tree = map[string]any{}
		return d, nil
	}
	w := walker{sc: sc, d: d}
	if d.tree, err = w.section(top, ""); err != nil {
		return nil, err
	}
	return d, nil
}

// unmarshal is yaml.Unmarshal that turns a panic inside the parser into an
// error: a reload must not take the daemon down over a malformed file.
func unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return yaml.Unmarshal(data, n)
}

type walker struct {
	sc *schema
	d  *doc
}

// section checks a mapping at path ("" for the top level) and returns it as
// a viper tree. A null section (`tap:` with nothing under it) is empty.
func (w *walker) section(n *yaml.Node, path string) (map[string]any, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		key := path
		if key == "" {
			key = "(top level)"
		}
		return nil, w.bad(n, key, "is not a mapping", "keys "+strings.Join(w.sc.children[path], ", "))
	}
	out := map[string]any{}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode || !w.sc.known(join(path, k.Value)) {
			return nil, w.unknown(n.Content[i], path, w.sc.keys)
		}
		full := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			return nil, w.bad(v, full, fmt.Sprintf("is a second value (first on line %d)", line), "one value per key")
		}
		first[k.Value] = k.Line
		w.d.lines[full] = k.Line

		var val any
		var err error
		if kd, leaf := w.sc.leaves[full]; leaf {
			val, err = w.leaf(v, full, kd)
		} else {
			var sub map[string]any
			sub, err = w.section(v, full)
			if sub != nil {
				val = sub
			}
		}
		if err != nil {
			return nil, err
		}
		if val != nil {
			out[k.Value] = val
		}
	}
	return out, nil
}

// leaf checks one key's value against its kind. Null means "not set": the
// key keeps its default (or env/flag value), and so returns nil.
func (w *walker) leaf(n *yaml.Node, key string, kd kind) (any, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	switch kd {
	case kindScalar:
		return w.scalar(n, key)
	case kindList:
		if n.Kind == yaml.ScalarNode { // "a:1,b:2", as in the environment
			return n.Value, nil
		}
		if n.Kind != yaml.SequenceNode {
			return nil, w.bad(n, key, "is not a list", w.sc.allowed[key])
		}
		items := make([]any, len(n.Content))
		for i, it := range n.Content {
			s, err := w.scalar(deref(it), indexed(key, i))
			if err != nil {
				return nil, err
			}
			items[i] = s
		}
		return items, nil
	case kindTURN:
		if n.Kind != yaml.SequenceNode {
			return nil, w.bad(n, key, "is not a list", w.sc.allowed[key])
		}
		items := make([]any, len(n.Content))
		for i, it := range n.Content {
			m, err := w.flatMap(deref(it), indexed(key, i), turnKeys)
			if err != nil {
				return nil, err
			}
			items[i] = m
		}
		return items, nil
	default: // kindMap: names chosen by the user, so any key is allowed
		m, err := w.flatMap(n, key, nil)
		if err != nil {
			return nil, err
		}
		w.d.maps[key] = make(map[string]string, len(m))
		for name, v := range m {
			w.d.maps[key][name] = v.(string)
		}
		return nil, nil // kept out of viper, which would lowercase the names
	}
}

// flatMap checks a mapping of scalars. keys, if not nil, are the only names
// allowed; unknown ones get a suggestion among them.
func (w *walker) flatMap(n *yaml.Node, key string, keys []string) (map[string]any, error) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, w.bad(n, key, "is not a mapping", w.sc.allowed[baseKey(key)])
	}
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode || keys != nil && !slices.Contains(keys, k.Value) {
			cands := make([]string, len(keys))
			for j, c := range keys {
				cands[j] = join(key, c)
			}
			return nil, w.unknown(n.Content[i], key, cands)
		}
		full := join(key, k.Value)
		if _, dup := out[k.Value]; dup {
			return nil, w.bad(n.Content[i+1], full, "is a second value", "one value per key")
		}
		s, err := w.scalar(deref(n.Content[i+1]), full)
		if err != nil {
			return nil, err
		}
		out[k.Value] = s
	}
	return out, nil
}

// scalar returns a single value as the string the user wrote.
func (w *walker) scalar(n *yaml.Node, key string) (any, error) {
	switch {
	case isNull(n):
		return "", nil
	case n.Kind != yaml.ScalarNode:
		return nil, w.bad(n, key, "is not a single value", w.sc.allowed[baseKey(key)])
	}
	return n.Value, nil
}

func (w *walker) bad(n *yaml.Node, key, problem, allowed string) *KeyError {
	return &KeyError{Source: w.at(n), Key: key, Value: show(n), Problem: problem, Allowed: allowed}
}

// unknown reports key node k under path, suggesting the nearest candidate
// or, failing that, listing what path may hold.
func (w *walker) unknown(k *yaml.Node, path string, candidates []string) *KeyError {
	name := "(non-string key)"
	if d := deref(k); d != nil && d.Kind == yaml.ScalarNode {
		name = d.Value
	}
	full := join(path, name)
	e := &KeyError{Source: w.at(k), Key: full, Problem: problemUnknown, Suggest: nearest(full, candidates)}
	if ch, ok := w.sc.children[path]; ok {
		e.Allowed = "keys " + strings.Join(ch, ", ")
	}
	return e
}

func (w *walker) at(n *yaml.Node) string {
	if n == nil || n.Line == 0 {
		return w.d.name
	}
	return w.d.name + ":" + strconv.Itoa(n.Line)
}

// deref follows aliases (*name) to what they point at. The bound guards a
// node graph built by hand; the parser itself rejects alias cycles.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.AliasNode ||
		n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// show renders a node as an error's value.
func show(n *yaml.Node) string {
	switch {
	case n == nil:
		return "null"
	case n.Kind == yaml.MappingNode:
		return "{...}"
	case n.Kind == yaml.SequenceNode:
		return "[...]"
	}
	return quote(n.Value)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexed(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// baseKey strips list indexes: "turn[0].username" → "turn".
func baseKey(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		return key[:i]
	}
	return key
}
