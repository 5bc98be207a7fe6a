package config

// Loading. The keys are not listed anywhere by hand: schema() walks the
// Config struct once, by reflection, and every key is the dotted path of the
// yaml tags down to a leaf field (string, Role, bool, int, time.Duration,
// []string or map[string]string). The YAML file, the environment and the flags all go
// through that one schema, so a field added to Config is at once a YAML key,
// a TANDEM_* variable and a flag.
//
// Load does not read the process's environment or flags itself: cmd/ passes
// os.Environ() and the flags the user set, so tests pass their own.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable that sets a key.
const EnvPrefix = "TANDEM_"

// Load builds a node's Config: Default(), then the YAML file (if file is not
// ""), then the environment, then flags, each overriding the one before; then
// heartbeat.interval and .timeout from heartbeat.profile where no source set
// them (Heartbeat.WithProfile); then Validate. A list or map value from a later source replaces the earlier one
// whole.
//
// The file is strict: an unknown or repeated key is an error naming the file
// and line. environ is in os.Environ form ("NAME=value"); only the variables
// EnvVar names for a key are read, and other TANDEM_* variables (such as those
// set for hooks) are ignored. flags maps a key to its value, as RegisterFlags'
// set func returns it; a key that does not exist is an error.
//
// In the environment and flags, durations are Go durations ("250ms", "672h"),
// lists are comma lists ("orders,customers") and maps are comma lists of
// key=value ("alpha=alpha.example,beta=beta.example"); an empty value empties
// a list or map. Every error names the key and where its value came from.
func Load(file string, environ []string, flags map[string]string) (Config, error) {
	return load(file, environ, flags, Config.Validate)
}

// load reads the three sources over Default() and checks the result with
// validate.
func load(file string, environ []string, flags map[string]string, validate func(Config) error) (Config, error) {
	c := Default()
	// Interval and timeout come from the profile unless a source sets them;
	// unsetDuration tells "not set" from an explicit 0, which is refused.
	c.Heart.Interval, c.Heart.Timeout = unsetDuration, unsetDuration
	if file != "" {
		if err := applyFile(&c, file); err != nil {
			return Config{}, err
		}
	}
	if err := errors.Join(applyEnv(&c, environ), applyFlags(&c, flags)); err != nil {
		return Config{}, err
	}
	zeros := c.Heart.explicitZeros()
	c.Heart = c.Heart.WithProfile()
	if err := errors.Join(zeros, validate(c)); err != nil {
		return Config{}, err
	}
	return c, nil
}

// unsetDuration marks heartbeat.interval and .timeout that no source set
// while the sources are read (no one writes -2562047h47m16.854775808s).
const unsetDuration = time.Duration(math.MinInt64)

// explicitZeros refuses an interval or timeout a source set to 0 (it
// would otherwise be the profile's, silently), and turns the unset ones
// into 0 for WithProfile.
func (h *Heartbeat) explicitZeros() error {
	var errs []error
	p, ok := Profiles[h.Profile]
	for _, k := range []struct {
		key     string
		d       *time.Duration
		profile time.Duration
		allowed string
	}{
		{"heartbeat.interval", &h.Interval, p.Interval, "at least 10ms"},
		{"heartbeat.timeout", &h.Timeout, p.Timeout, "at least 2 × heartbeat.interval"},
	} {
		switch {
		case *k.d == unsetDuration:
			*k.d = 0
		case *k.d == 0 && ok:
			errs = append(errs, fmt.Errorf("%s: 0s: want %s; leave it unset for heartbeat.profile %s's %v", k.key, k.allowed, h.Profile, k.profile))
		case *k.d == 0:
			errs = append(errs, fmt.Errorf("%s: 0s: want %s", k.key, k.allowed))
		}
	}
	return errors.Join(errs...)
}

// Keys returns every config key, sorted: "admin.listen", …, "pair", ….
func Keys() []string { return slices.Clone(schema().keys) }

// EnvVar returns the environment variable that sets key: EnvPrefix, then the
// key upper-cased with '.' made '_' (heartbeat.interval →
// TANDEM_HEARTBEAT_INTERVAL).
func EnvVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// ParseValue sets key in c from its environment/flag text form.
func ParseValue(key, value string, c *Config) error {
	f, ok := schema().fields[key]
	if !ok {
		return fmt.Errorf("unknown key %q", key)
	}
	if err := f.setText(c, value); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// RegisterFlags defines one string flag per key on fs, named for the key
// (--heartbeat.interval), with the key's help and default. The returned func,
// called after fs.Parse, gives the config flags the user set, for Load.
func RegisterFlags(fs *flag.FlagSet) (set func() map[string]string) {
	s, d := schema(), Default()
	for _, key := range s.keys {
		f := s.fields[key]
		fs.String(key, f.text(d), fmt.Sprintf("%s ($%s)", f.help, EnvVar(key)))
	}
	return func() map[string]string {
		m := make(map[string]string)
		fs.Visit(func(fl *flag.Flag) {
			if _, ok := s.fields[fl.Name]; ok {
				m[fl.Name] = fl.Value.String()
			}
		})
		return m
	}
}

func applyEnv(c *Config, environ []string) error {
	vars := make(map[string]string)
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			vars[name] = value // the last one wins, as with exec.Cmd
		}
	}
	var errs []error
	for _, key := range schema().keys {
		name := EnvVar(key)
		if value, ok := vars[name]; ok {
			if err := ParseValue(key, value, c); err != nil {
				errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func applyFlags(c *Config, flags map[string]string) error {
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, key := range keys {
		f, ok := schema().fields[key]
		if !ok {
			errs = append(errs, fmt.Errorf("flag --%s: unknown key", key))
			continue
		}
		if err := f.setText(c, flags[key]); err != nil {
			errs = append(errs, fmt.Errorf("flag --%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// The schema.

type kind int

const (
	kindString kind = iota
	kindDuration
	kindList
	kindMap
	kindBool
	kindInt
)

// field is one key: where it is in Config and how its values are read.
type field struct {
	key   string
	help  string
	index []int // reflect.Value.FieldByIndex path from Config
	typ   reflect.Type
	kind  kind
}

type keySchema struct {
	fields   map[string]field
	sections map[string]bool // keys of the nested structs: "nats", "heartbeat", …
	keys     []string        // of fields, sorted
	// fileOnly are the fields tagged file:"only", set from the YAML file
	// alone (checks.list): not keys, no variable, no flag.
	fileOnly map[string][]int
}

// schema is built once; a Config field it cannot load is a programming error
// and panics (every test of this package would).
var schema = sync.OnceValue(func() keySchema {
	s := keySchema{fields: make(map[string]field), sections: make(map[string]bool), fileOnly: make(map[string][]int)}
	s.add(reflect.TypeFor[Config](), "", nil)
	sort.Strings(s.keys)
	env := make(map[string]string)
	for _, k := range s.keys {
		if other, dup := env[EnvVar(k)]; dup {
			panic(fmt.Sprintf("config: keys %q and %q share variable %s", other, k, EnvVar(k)))
		}
		env[EnvVar(k)] = k
	}
	return s
})

func (s *keySchema) add(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			panic(fmt.Sprintf("config: field %s.%s has no yaml tag", t.Name(), sf.Name))
		}
		key, idx := joinKey(prefix, name), append(slices.Clone(index), i)
		if sf.Tag.Get("file") == "only" {
			s.fileOnly[key] = idx
			continue
		}
		if sf.Type.Kind() == reflect.Struct {
			s.sections[key] = true
			s.add(sf.Type, key, idx)
			continue
		}
		s.fields[key] = field{key: key, help: sf.Tag.Get("help"), index: idx, typ: sf.Type, kind: kindOf(sf.Type)}
		s.keys = append(s.keys, key)
	}
}

func kindOf(t reflect.Type) kind {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return kindDuration
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() == reflect.Int:
		return kindInt
	case t == reflect.TypeFor[[]string]():
		return kindList
	case t == reflect.TypeFor[map[string]string]():
		return kindMap
	}
	panic(fmt.Sprintf("config: no loader for field type %v", t))
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// set stores v, a string, bool, int, time.Duration, []string or
// map[string]string.
func (f field) set(c *Config, v any) {
	reflect.ValueOf(c).Elem().FieldByIndex(f.index).Set(reflect.ValueOf(v).Convert(f.typ))
}

// setText sets the field from its environment/flag form.
func (f field) setText(c *Config, s string) error {
	var v any
	var err error
	switch f.kind {
	case kindString:
		v = s
	case kindDuration:
		v, err = time.ParseDuration(s)
	case kindList:
		v, err = parseList(s)
	case kindMap:
		v, err = parseMap(s)
	case kindBool:
		v, err = parseBool(s)
	case kindInt:
		v, err = parseInt(s)
	}
	if err != nil {
		return err
	}
	f.set(c, v)
	return nil
}

// text is the environment/flag form of the field's value in c.
func (f field) text(c Config) string {
	v := reflect.ValueOf(c).FieldByIndex(f.index)
	switch f.kind {
	case kindDuration:
		return time.Duration(v.Int()).String()
	case kindList:
		return strings.Join(v.Interface().([]string), ",")
	case kindMap:
		return formatMap(v.Interface().(map[string]string))
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt:
		return strconv.FormatInt(v.Int(), 10)
	}
	return v.String()
}

// parseInt reads a whole number in decimal ("1024"); signs are allowed, so
// that Validate can say a negative value is out of range.
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: want a whole number", s)
	}
	return n, nil
}

// parseBool reads true/false (and the forms strconv.ParseBool knows: 1, 0,
// t, f, …); YAML's yes/no are not booleans here.
func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Errorf("%q: want true or false", s)
	}
	return b, nil
}

func parseList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	items := strings.Split(s, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if items[i] == "" {
			return nil, fmt.Errorf("empty item %d in %q", i+1, s)
		}
	}
	return items, nil
}

func parseMap(s string) (map[string]string, error) {
	items, err := parseList(s)
	if err != nil || items == nil {
		return nil, err
	}
	m := make(map[string]string, len(items))
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("item %q: want name=value", item)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%q given twice", k)
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, nil
}

func formatMap(m map[string]string) string {
	items := make([]string, 0, len(m))
	for k, v := range m {
		items = append(items, k+"="+v)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}

// The YAML file. It is walked as a yaml.Node tree against the schema, rather
// than decoded into Config, so that every error can name the key and line,
// and so that durations are read with time.ParseDuration.

type yamlFile struct {
	name string
	c    *Config
}

func applyFile(c *Config, name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	return applyYAML(c, name, data)
}

func applyYAML(c *Config, name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // an empty file leaves the defaults
	} else if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return fmt.Errorf("%s:%d: a second YAML document; want one", name, next.Line)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	f := yamlFile{name: name, c: c}
	return f.section("", doc.Content[0])
}

// section applies the mapping n, the value of section key prefix ("" for the
// top level).
func (f yamlFile) section(prefix string, n *yaml.Node) error {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		what := "the top level"
		if prefix != "" {
			what = prefix
		}
		return f.errorf(n, "%s: want a mapping of keys, got %s", what, describe(n))
	}
	seen := make(map[string]int) // key → line
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := joinKey(prefix, k.Value)
		if line, dup := seen[key]; dup {
			errs = append(errs, f.errorf(k, "%s: already set at line %d", key, line))
			continue
		}
		seen[key] = k.Line
		errs = append(errs, f.entry(key, k, v))
	}
	return errors.Join(errs...)
}

func (f yamlFile) entry(key string, k, v *yaml.Node) error {
	s := schema()
	if idx, ok := s.fileOnly[key+".list"]; ok && s.sections[key] && resolve(v).Kind == yaml.SequenceNode {
		return f.list(key+".list", idx, v) // the short form: the section is its list
	}
	if idx, ok := s.fileOnly[key]; ok {
		return f.list(key, idx, v)
	}
	if s.sections[key] {
		return f.section(key, v)
	}
	fl, ok := s.fields[key]
	if !ok {
		return f.errorf(k, "unknown key %q", key)
	}
	if isNull(resolve(v)) {
		return nil // "key:" with no value leaves the value before
	}
	val, err := fromYAML(fl.kind, v)
	if err != nil {
		return f.errorf(v, "%s: %w", key, err)
	}
	fl.set(f.c, val)
	return nil
}

// list sets a file-only field: the only one is checks.list.
func (f yamlFile) list(key string, idx []int, v *yaml.Node) error {
	if isNull(resolve(v)) {
		return nil
	}
	checks, err := f.checks(key, v)
	if err != nil {
		return err
	}
	reflect.ValueOf(f.c).Elem().FieldByIndex(idx).Set(reflect.ValueOf(checks))
	return nil
}

// checks reads the list of health checks (F15), filling the defaults of the
// fields each item leaves out; an unknown or repeated field is an error.
func (f yamlFile) checks(key string, n *yaml.Node) ([]Check, error) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return nil, f.errorf(n, "%s: want a list of checks, got %s", key, describe(n))
	}
	var out []Check
	var errs []error
	for i, item := range n.Content {
		c, err := f.check(fmt.Sprintf("%s item %d", key, i+1), resolve(item))
		errs = append(errs, err)
		out = append(out, c.WithDefaults())
	}
	return out, errors.Join(errs...)
}

func (f yamlFile) check(at string, n *yaml.Node) (Check, error) {
	var c Check
	if n.Kind != yaml.MappingNode {
		return c, f.errorf(n, "%s: want a mapping (name, exec|http|tcp, interval, timeout, fall, rise), got %s", at, describe(n))
	}
	strs := map[string]*string{"name": &c.Name, "exec": &c.Exec, "http": &c.HTTP, "tcp": &c.TCP}
	durs := map[string]*time.Duration{"interval": &c.Interval, "timeout": &c.Timeout}
	ints := map[string]*int{"fall": &c.Fall, "rise": &c.Rise}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		val, err := scalar(v)
		switch {
		case seen[k.Value]:
			return c, f.errorf(k, "%s: %s given twice", at, k.Value)
		case err != nil:
			return c, f.errorf(v, "%s: %s: %w", at, k.Value, err)
		case strs[k.Value] != nil:
			*strs[k.Value] = val
		case durs[k.Value] != nil:
			d, err := time.ParseDuration(val)
			if err != nil {
				return c, f.errorf(v, "%s: %s: %w", at, k.Value, err)
			}
			if d == 0 && k.Value == "interval" { // not the default 1s in disguise
				return c, f.errorf(v, "%s: interval: 0s: want at least 10ms; leave it out for %v", at, DefaultCheckInterval)
			}
			*durs[k.Value] = d
		case ints[k.Value] != nil:
			x, err := strconv.Atoi(val)
			if err != nil || x < 1 {
				return c, f.errorf(v, "%s: %s: %q is not a whole number of at least 1", at, k.Value, val)
			}
			*ints[k.Value] = x
		default:
			return c, f.errorf(k, "%s: unknown field %q (want name, exec, http, tcp, interval, timeout, fall, rise)", at, k.Value)
		}
		seen[k.Value] = true
	}
	return c, nil
}

func (f yamlFile) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %w", f.name, n.Line, fmt.Errorf(format, args...))
}

func fromYAML(k kind, n *yaml.Node) (any, error) {
	switch k {
	case kindDuration:
		s, err := scalar(n)
		if err != nil {
			return nil, err
		}
		return time.ParseDuration(s)
	case kindList:
		return yamlList(n)
	case kindMap:
		return yamlMap(n)
	case kindBool, kindInt:
		s, err := scalar(n)
		if err != nil {
			return nil, err
		}
		if k == kindInt {
			return parseInt(s)
		}
		return parseBool(s)
	}
	return scalar(n)
}

func yamlList(n *yaml.Node) ([]string, error) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("want a list, got %s", describe(n))
	}
	var list []string // nil when empty, as from the environment
	for i, item := range n.Content {
		s, err := scalar(item)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		list = append(list, s)
	}
	return list, nil
}

func yamlMap(n *yaml.Node) (map[string]string, error) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping, got %s", describe(n))
	}
	if len(n.Content) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := scalar(n.Content[i])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Content[i].Line, err)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%q given twice", k)
		}
		if m[k], err = scalar(n.Content[i+1]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return m, nil
}

// scalar is the text of a single non-null value.
func scalar(n *yaml.Node) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", fmt.Errorf("want a single value, got %s", describe(n))
	}
	return n.Value, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// otherEnv are TANDEM_* variables that are not node keys yet expected: the
// client defaults and what hooks are given.
var otherEnv = map[string]bool{"TANDEM_SERVER": true, "TANDEM_CREDS": true, "TANDEM_PAIR": true, "TANDEM_TLS_CA": true, "TANDEM_EPOCH": true, "TANDEM_STATE": true}

// UnknownEnv lists the TANDEM_* variables of environ that set no key (a
// typo such as TANDEM_HEARTBEAT_INTERVALL), sorted, for a warning at start.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	for _, k := range schema().keys {
		known[EnvVar(k)] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] && !otherEnv[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
