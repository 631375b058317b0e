package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// flagSpec is one command-line override of a key.
type flagSpec struct {
	name, key, usage string
	isInt            bool
}

// loader is what differs between ipopd and ipop-rendezvous.
type loader struct {
	envPrefix   string // "IPOPD": variables are IPOPD_<KEY with dots as _>
	pathEnv     string // variable naming the config file
	defaultPath string
	flags       []flagSpec
}

var ipopd = loader{
	envPrefix:   "IPOPD",
	pathEnv:     "IPOPD_CONFIG",
	defaultPath: DefaultPath,
	flags: []flagSpec{
		{"network", "network", "overlay network name", false},
		{"node-name", "node.name", "this node's name", false},
		{"tap-name", "tap.name", "TAP interface name", false},
		{"tap-mode", "tap.mode", "TAP mode: host or switch", false},
		{"tap-address", "tap.address", "TAP IPv4 address with prefix length, e.g. 10.254.0.1/16", false},
		{"tap-address6", "tap.address6", "TAP IPv6 address with prefix length, e.g. fd54::1/64", false},
		{"tap-mtu", "tap.mtu", "TAP MTU, 576..9000", true},
		{"tap-bridge", "tap.bridge", "Linux bridge the TAP joins in switch mode", false},
		{"control-socket", "control.socket", "path of the control socket", false},
		{"metrics-listen", "metrics.listen", "host:port serving Prometheus metrics; empty for none", false},
		{"log-level", "log.level", "log level: debug, info, warn or error", false},
	},
}

// Flags registers --config/-c and the override flags on fs. Call it once
// per FlagSet; Load reads them back.
func Flags(fs *pflag.FlagSet) { ipopd.register(fs) }

// Load reads ipopd's config: the file named by --config (or by IPOPD_CONFIG
// when the flag was not given; --config "" means no file), then IPOPD_*
// variables, then the flags of fs that were set on the command line, each
// overriding the one before and all overriding Default(). The result is
// validated. Load may be called again (SIGHUP) and returns a fresh Config.
// A missing file wraps ErrNotFound; every bad entry wraps ErrInvalid.
func Load(fs *pflag.FlagSet) (*Config, error) {
	return loadConfig(ipopd.path(fs), fs)
}

// LoadFile is Load without flags: the file at path ("" for none), the
// environment and the defaults.
func LoadFile(path string) (*Config, error) { return loadConfig(path, nil) }

func loadConfig(path string, fs *pflag.FlagSet) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return loadBytes(path, data, fs)
}

// loadBytes is the whole load from a file's contents; name "" means no file.
func loadBytes(name string, data []byte, fs *pflag.FlagSet) (*Config, error) {
	c := Default()
	sources, err := ipopd.load(c.fields(), name, data, fs)
	if err != nil {
		return nil, err
	}
	c.File, c.sources = name, sources
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &sentinelError{"config: " + path + ": file not found", ErrNotFound}
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err) // *fs.PathError names the path
	}
	return data, nil
}

func (l *loader) register(fs *pflag.FlagSet) {
	fs.StringP("config", "c", l.defaultPath,
		fmt.Sprintf(`config file (YAML), "" for none; %s sets it when this flag is not given`, l.pathEnv))
	for _, s := range l.flags {
		usage := fmt.Sprintf("%s (overrides key %s)", s.usage, s.key)
		if s.isInt {
			fs.Int(s.name, 0, usage)
		} else {
			fs.String(s.name, "", usage)
		}
	}
}

// path picks the config file: --config if given, else the environment,
// else the flag's default.
func (l *loader) path(fs *pflag.FlagSet) string {
	var f *pflag.Flag
	if fs != nil {
		f = fs.Lookup("config")
	}
	if f != nil && f.Changed {
		return f.Value.String()
	}
	if p, ok := os.LookupEnv(l.pathEnv); ok {
		return p
	}
	if f != nil {
		return f.Value.String()
	}
	return l.defaultPath
}

// envName is the variable for key, as viper derives it.
func (l *loader) envName(key string) string {
	return l.envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// load fills fields, which hold the defaults, from the file (name "" for
// none), the environment and the changed flags of fs, and returns where each
// key's value came from. Viper layers the sources; the file is parsed by
// parseDoc first so that structure errors have line numbers.
func (l *loader) load(fields []field, name string, data []byte, fs *pflag.FlagSet) (map[string]string, error) {
	sc := newSchema(fields)
	var d *doc
	if name != "" {
		var err error
		if d, err = parseDoc(name, data, sc); err != nil {
			return nil, err
		}
	}
	if err := l.checkEnv(fields); err != nil {
		return nil, err
	}

	v := viper.New()
	v.SetEnvPrefix(l.envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true) // IPOPD_TAP_BRIDGE= clears a value set in the file
	v.AutomaticEnv()
	if d != nil {
		if err := v.MergeConfigMap(d.tree); err != nil {
			return nil, fmt.Errorf("config: %s: %w", name, err)
		}
	}
	flags := map[string]*pflag.Flag{}
	for _, s := range l.flags {
		if f := lookup(fs, s.name); f != nil {
			if err := v.BindPFlag(s.key, f); err != nil {
				return nil, fmt.Errorf("config: flag --%s: %w", s.name, err)
			}
			flags[s.key] = f
		}
	}

	sources := make(map[string]string, len(fields))
	for _, f := range fields {
		// Where the value comes from, in viper's order of precedence; used
		// for messages, for path resolution and for the one key viper
		// cannot carry (kindMap).
		env := l.envName(f.key)
		envVal, fromEnv := os.LookupEnv(env)
		fromFlag := flags[f.key] != nil && flags[f.key].Changed
		var src string
		switch {
		case fromFlag:
			src = "flag --" + flags[f.key].Name
		case fromEnv:
			src = "env " + env
		case d != nil:
			src = name
			if line, ok := d.lines[f.key]; ok {
				src = fmt.Sprintf("%s:%d", name, line)
			}
		}
		sources[f.key] = src

		var raw any
		switch {
		case f.kind() == kindMap && fromEnv:
			raw = envVal
		case f.kind() == kindMap && d != nil && d.maps[f.key] != nil:
			raw = d.maps[f.key]
		case f.kind() == kindMap || !v.IsSet(f.key):
			continue // keeps the default
		default:
			raw = v.Get(f.key)
		}
		if e := decode(f, raw); e != nil {
			e.Source = src
			return nil, e
		}
		if f.path && !fromFlag && !fromEnv && d != nil {
			if err := resolve(f.ptr.(*string), name); err != nil {
				return nil, err
			}
		}
	}
	return sources, nil
}

// resolve makes a relative path from the file relative to the file's
// directory, not to wherever the daemon was started.
func resolve(p *string, file string) error {
	if *p == "" || filepath.IsAbs(*p) {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return fmt.Errorf("config: %s: %w", file, err)
	}
	*p = filepath.Join(dir, *p)
	return nil
}

// checkEnv rejects a variable with our prefix that names no key, so a typo
// like IPOPD_TAP_MDOE is not silently ignored.
func (l *loader) checkEnv(fields []field) error {
	known := map[string]bool{l.pathEnv: true}
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		n := l.envName(f.key)
		known[n] = true
		names = append(names, n)
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, l.envPrefix+"_") && !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	e := &KeyError{Source: "env", Key: unknown[0], Problem: "unknown variable", Suggest: nearest(unknown[0], names)}
	e.Allowed = l.envPrefix + "_ and a key with dots as _, e.g. " + names[0] + "; " + l.pathEnv
	return e
}

func lookup(fs *pflag.FlagSet, name string) *pflag.Flag {
	if fs == nil {
		return nil
	}
	return fs.Lookup(name)
}

// sentinelError is an error with its own one-line message that still
// matches a sentinel under errors.Is.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

func invalidf(format string, args ...any) error {
	return &sentinelError{fmt.Sprintf(format, args...), ErrInvalid}
}
