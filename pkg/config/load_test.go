package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// named is the least a valid configuration needs beyond the defaults.
var named = []string{"TANDEM_PAIR=shop", "TANDEM_NODE=alpha"}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// text is the environment/flag form of key's value in c.
func text(c Config, key string) string { return schema().fields[key].text(c) }

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestKeys(t *testing.T) {
	want := []string{
		"admin.listen", "admin.tls.cert", "admin.tls.key", "admin.tokens_file", "admin.users_file", "audit.max_age", "audit.max_bytes", "checks.takeover_when_unhealthy", "data_dir", "database.path", "database.tables", "failback",
		"heartbeat.discovery", "heartbeat.interval", "heartbeat.profile", "heartbeat.settle", "heartbeat.timeout",
		"hooks.on_active", "hooks.on_passive", "hooks.timeout", "hosts",
		"hub.auth", "hub.ca", "hub.cluster_listen", "hub.cluster_secret", "hub.creds", "hub.leaf_listen", "hub.listen", "hub.name", "hub.routes", "hub.sessions", "hub.uplinks", "hub.url", "insecure",
		"license.grace", "license.public_key", "log.format", "log.level",
		"maintenance.default", "maintenance.max",
		"nats.auth", "nats.creds", "nats.creds_dir", "nats.leaf_creds", "nats.leaf_listen", "nats.listen", "nats.peer", "nats.sessions",
		"nats.tls.ca", "nats.tls.cert", "nats.tls.key", "nats.tls.verify", "nats.url",
		"node", "notifier.config_refresh", "notifier.hosts_table", "notifier.max_conns", "notifier.progress_timeout", "notifier.push_listen",
		"notifier.reannounce", "notifier.resources_table", "notifier.state_consumers", "notifier.tls.cert", "notifier.tls.key", "notifier.tokens_file", "pair", "role",
		"witness.ca", "witness.creds", "witness.listen", "witness.pairs", "witness.required", "witness.url",
	}
	if got := Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys() =\n%q\nwant\n%q", got, want)
	}
	for _, k := range Keys() {
		if schema().fields[k].help == "" {
			t.Errorf("key %s has no help tag", k)
		}
	}
}

func TestEnvVar(t *testing.T) {
	for key, want := range map[string]string{
		"pair":               "TANDEM_PAIR",
		"heartbeat.interval": "TANDEM_HEARTBEAT_INTERVAL",
		"nats.leaf_listen":   "TANDEM_NATS_LEAF_LISTEN",
	} {
		if got := EnvVar(key); got != want {
			t.Errorf("EnvVar(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		key, value string
		want       string // the value's text form after parsing
		err        []string
	}{
		{key: "pair", value: "shop", want: "shop"},
		{key: "role", value: "standby", want: "standby"},
		{key: "heartbeat.interval", value: "250ms", want: "250ms"},
		{key: "license.grace", value: "672h", want: "672h0m0s"},
		{key: "heartbeat.interval", value: "soon", err: []string{"heartbeat.interval", `invalid duration "soon"`}},
		{key: "heartbeat.interval", value: "5", err: []string{"heartbeat.interval", "missing unit"}},
		{key: "database.tables", value: "orders, customers", want: "orders,customers"},
		{key: "database.tables", value: "", want: ""},
		{key: "database.tables", value: "orders,,customers", err: []string{"database.tables", "empty item 2"}},
		{key: "hosts", value: "alpha=a.example, beta=b.example", want: "alpha=a.example,beta=b.example"},
		{key: "hosts", value: "", want: ""},
		{key: "hosts", value: "alpha", err: []string{"hosts", `"alpha": want name=value`}},
		{key: "hosts", value: "=a.example", err: []string{"hosts", "want name=value"}},
		{key: "hosts", value: "alpha=a,alpha=b", err: []string{"hosts", `"alpha" given twice`}},
		{key: "nope", value: "x", err: []string{`unknown key "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c := Default()
			err := ParseValue(tt.key, tt.value, &c)
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := text(c, tt.key); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestParseValueHosts(t *testing.T) {
	c := Default()
	if err := ParseValue("hosts", "alpha=print-a,beta=print-b", &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alpha": "print-a", "beta": "print-b"}
	if !reflect.DeepEqual(c.Hosts, want) {
		t.Errorf("hosts = %v, want %v", c.Hosts, want)
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(Config) bool
		err     []string
	}{
		{
			name:    "duration",
			environ: []string{"TANDEM_HEARTBEAT_INTERVAL=250ms"},
			check:   func(c Config) bool { return c.Heart.Interval == 250*time.Millisecond },
		},
		{
			name:    "underscore in a key",
			environ: []string{"TANDEM_NATS_LEAF_LISTEN=127.0.0.2:17422"},
			check:   func(c Config) bool { return c.NATS.LeafListen == "127.0.0.2:17422" },
		},
		{
			name:    "hosts",
			environ: []string{"TANDEM_HOSTS=alpha=print-a,beta=print-b"},
			check:   func(c Config) bool { return c.Hosts["alpha"] == "print-a" && c.Hosts["beta"] == "print-b" },
		},
		{
			name:    "list",
			environ: []string{"TANDEM_DATABASE_TABLES=orders,customers"},
			check:   func(c Config) bool { return slices.Equal(c.Database.Tables, []string{"orders", "customers"}) },
		},
		{
			name:    "empty value sets empty",
			environ: []string{"TANDEM_NATS_LEAF_LISTEN="},
			check:   func(c Config) bool { return c.NATS.LeafListen == "" },
		},
		{
			name:    "last one wins",
			environ: []string{"TANDEM_FAILBACK=manual", "TANDEM_FAILBACK=automatic"},
			check:   func(c Config) bool { return c.Failback == FailbackAutomatic },
		},
		{
			name:    "other variables ignored",
			environ: []string{"TANDEM_EPOCH=7", "TANDEM_STATE=active", "TANDEM_HEARTBEAT=x", "HOME=/root", "TANDEM_X"},
			check:   func(c Config) bool { return reflect.DeepEqual(c.Heart, Default().Heart) },
		},
		{
			name:    "bad duration",
			environ: []string{"TANDEM_HEARTBEAT_TIMEOUT=3"},
			err:     []string{"environment TANDEM_HEARTBEAT_TIMEOUT", "heartbeat.timeout", "missing unit"},
		},
		{
			name:    "every bad variable reported",
			environ: []string{"TANDEM_HEARTBEAT_TIMEOUT=3", "TANDEM_HOSTS=alpha"},
			err:     []string{"TANDEM_HEARTBEAT_TIMEOUT", "TANDEM_HOSTS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", append(slices.Clone(named), tt.environ...), nil)
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func newFlagSet() (*flag.FlagSet, func() map[string]string) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.String("config", "", "config file")
	return fs, RegisterFlags(fs)
}

func TestLoadFlags(t *testing.T) {
	fs, set := newFlagSet()
	err := fs.Parse([]string{
		"--config=node.yaml", "--pair=shop", "--node", "alpha",
		"--heartbeat.interval=250ms", "--hosts=alpha=print-a,beta=print-b",
	})
	if err != nil {
		t.Fatal(err)
	}
	flags := set()
	want := map[string]string{
		"pair": "shop", "node": "alpha", "heartbeat.interval": "250ms", "hosts": "alpha=print-a,beta=print-b",
	}
	if !reflect.DeepEqual(flags, want) {
		t.Fatalf("set() = %v, want %v (only config keys the user set)", flags, want)
	}
	c, err := Load("", nil, flags)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pair != "shop" || c.Heart.Interval != 250*time.Millisecond || c.Hosts["beta"] != "print-b" {
		t.Errorf("unexpected config %+v", c)
	}
}

func TestLoadFlagErrors(t *testing.T) {
	_, err := Load("", named, map[string]string{"heartbeat.interval": "fast"})
	wantErr(t, err, "flag --heartbeat.interval", `invalid duration "fast"`)
	_, err = Load("", named, map[string]string{"heartbeat.intervall": "1s"})
	wantErr(t, err, "flag --heartbeat.intervall: unknown key")
}

func TestRegisterFlagsUsage(t *testing.T) {
	fs, _ := newFlagSet()
	for _, k := range Keys() {
		if fs.Lookup(k) == nil {
			t.Errorf("no flag --%s", k)
		}
	}
	var out strings.Builder
	fs.SetOutput(&out)
	fs.PrintDefaults()
	for _, s := range []string{"-heartbeat.interval", "time between heartbeats; unset: the profile's ($TANDEM_HEARTBEAT_INTERVAL)", `(default "1s")`} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage does not contain %q:\n%s", s, out.String())
		}
	}
}

func TestPrecedence(t *testing.T) {
	const file = "pair: shop\nnode: alpha\nheartbeat:\n  interval: 200ms\n  timeout: 10s\n"
	env := []string{"TANDEM_HEARTBEAT_INTERVAL=300ms"}
	flags := map[string]string{"heartbeat.interval": "400ms"}
	tests := []struct {
		name             string
		file, env, flags bool
		want             time.Duration
	}{
		{name: "default", want: time.Second},
		{name: "file", file: true, want: 200 * time.Millisecond},
		{name: "env", env: true, want: 300 * time.Millisecond},
		{name: "flag", flags: true, want: 400 * time.Millisecond},
		{name: "env over file", file: true, env: true, want: 300 * time.Millisecond},
		{name: "flag over file", file: true, flags: true, want: 400 * time.Millisecond},
		{name: "flag over env", env: true, flags: true, want: 400 * time.Millisecond},
		{name: "flag over all", file: true, env: true, flags: true, want: 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			environ := append(slices.Clone(named), "TANDEM_HEARTBEAT_TIMEOUT=10s")
			var fl map[string]string
			if tt.file {
				path = writeFile(t, file)
			}
			if tt.env {
				environ = append(environ, env...)
			}
			if tt.flags {
				fl = flags
			}
			c, err := Load(path, environ, fl)
			if err != nil {
				t.Fatal(err)
			}
			if c.Heart.Interval != tt.want {
				t.Errorf("heartbeat.interval = %v, want %v", c.Heart.Interval, tt.want)
			}
		})
	}
}

func TestLaterSourceReplacesMap(t *testing.T) {
	path := writeFile(t, "hosts:\n  alpha: a.example\n  beta: b.example\n")
	c, err := Load(path, append(slices.Clone(named), "TANDEM_HOSTS=alpha=print-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"alpha": "print-a"}; !reflect.DeepEqual(c.Hosts, want) {
		t.Errorf("hosts = %v, want %v", c.Hosts, want)
	}
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name, file string
		check      func(Config) bool
	}{
		{name: "empty file", file: "", check: func(c Config) bool { return c.Heart == Default().Heart }},
		{name: "comments only", file: "# nothing\n", check: func(c Config) bool { return c.Heart == Default().Heart }},
		{
			name:  "null section and value keep defaults",
			file:  "hooks:\nheartbeat:\n  interval:\n",
			check: func(c Config) bool { return c.Heart == Default().Heart && c.Hooks == Default().Hooks },
		},
		{
			name: "durations",
			file: "heartbeat:\n  interval: 250ms\n  timeout: \"1s\"\nlicense:\n  grace: 672h\n",
			check: func(c Config) bool {
				return c.Heart.Interval == 250*time.Millisecond && c.License.Grace == 28*24*time.Hour
			},
		},
		{
			name:  "aliases",
			file:  "heartbeat:\n  discovery: &d 7s\n  settle: *d\n",
			check: func(c Config) bool { return c.Heart.Discovery == 7*time.Second && c.Heart.Settle == 7*time.Second },
		},
		{
			name: "hosts and tables",
			file: "hosts:\n  alpha: print-a\n  beta: print-b\ndatabase:\n  tables:\n    - orders\n    - customers\n",
			check: func(c Config) bool {
				return reflect.DeepEqual(c.Hosts, map[string]string{"alpha": "print-a", "beta": "print-b"}) &&
					slices.Equal(c.Database.Tables, []string{"orders", "customers"})
			},
		},
		{name: "empty list", file: "database:\n  tables: []\n", check: func(c Config) bool { return c.Database.Tables == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, tt.file), named, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, file string
		err        []string
	}{
		{name: "unknown key", file: "pair: shop\nnode: alpha\nbogus: 1\n", err: []string{"node.yaml:3: ", `unknown key "bogus"`}},
		{name: "unknown nested key", file: "heartbeat:\n  intervall: 1s\n", err: []string{"node.yaml:2: ", `unknown key "heartbeat.intervall"`}},
		{name: "every unknown key", file: "bogus: 1\nnats:\n  port: 2\n", err: []string{`"bogus"`, "node.yaml:3: ", `"nats.port"`}},
		{name: "bad duration", file: "heartbeat:\n  interval: soon\n", err: []string{"node.yaml:2: heartbeat.interval: ", `invalid duration "soon"`}},
		{name: "duration without unit", file: "heartbeat:\n  timeout: 3\n", err: []string{"node.yaml:2: heartbeat.timeout: ", "missing unit"}},
		{name: "list for a string", file: "pair: [a, b]\n", err: []string{"node.yaml:1: pair: want a single value, got a list"}},
		{name: "value for a section", file: "nats: nats://x\n", err: []string{"node.yaml:1: nats: want a mapping of keys"}},
		{name: "string for hosts", file: "hosts: alpha\n", err: []string{"node.yaml:1: hosts: want a mapping"}},
		{name: "list in hosts", file: "hosts:\n  alpha: [x]\n", err: []string{"node.yaml:2: hosts: alpha: want a single value"}},
		{name: "string for a list", file: "database:\n  tables: orders\n", err: []string{"node.yaml:2: database.tables: want a list"}},
		{name: "repeated key", file: "pair: a\npair: b\n", err: []string{"node.yaml:2: pair: already set at line 1"}},
		{name: "list at the top", file: "- a\n- b\n", err: []string{"node.yaml:1: the top level: want a mapping"}},
		{name: "two documents", file: "pair: a\n---\npair: b\n", err: []string{"node.yaml:2: a second YAML document"}},
		{name: "syntax", file: "pair: [\n", err: []string{"node.yaml: yaml: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.file), named, nil)
			wantErr(t, err, tt.err...)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"), named, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
	wantErr(t, err, "read config file", "none.yaml")
}

func TestLoadValidates(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		err     []string
	}{
		{name: "no names", err: []string{"pair:", "node:"}},
		{name: "timeout below 2 × interval", environ: append(slices.Clone(named), "TANDEM_HEARTBEAT_TIMEOUT=1500ms"), err: []string{"heartbeat.timeout"}},
		{name: "hosts without this node", environ: append(slices.Clone(named), "TANDEM_HOSTS=beta=print-b"), err: []string{`hosts: no entry for this node "alpha"`}},
		{name: "hooks.timeout 0", environ: append(slices.Clone(named), "TANDEM_HOOKS_TIMEOUT=0s"), err: []string{"hooks.timeout: 0s must be positive"}},
		{name: "notifier durations", environ: append(slices.Clone(named), "TANDEM_NOTIFIER_REANNOUNCE=0s", "TANDEM_NOTIFIER_PROGRESS_TIMEOUT=-1s"),
			err: []string{"notifier.reannounce: 0s must be positive", "notifier.progress_timeout: -1s must be positive"}},
		{name: "notifier.config_refresh 0", environ: append(slices.Clone(named), "TANDEM_NOTIFIER_CONFIG_REFRESH=0s"), err: []string{"notifier.config_refresh: 0s must be positive"}},
		{name: "notifier.max_conns 0", environ: append(slices.Clone(named), "TANDEM_NOTIFIER_MAX_CONNS=0"), err: []string{"notifier.max_conns is 0: want 1 to 1000000"}},
		{name: "license.grace 0", environ: append(slices.Clone(named), "TANDEM_LICENSE_GRACE=0s"), err: []string{"license.grace: 0s must be positive"}},
		{name: "maintenance.default 0", environ: append(slices.Clone(named), "TANDEM_MAINTENANCE_DEFAULT=0s"), err: []string{"maintenance.default: 0s must be positive"}},
		{name: "maintenance.max below default", environ: append(slices.Clone(named), "TANDEM_MAINTENANCE_MAX=30m"), err: []string{"maintenance.max: 30m0s must be at least maintenance.default (1h0m0s)"}},
		{name: "audit.max_age 0", environ: append(slices.Clone(named), "TANDEM_AUDIT_MAX_AGE=0s"), err: []string{"audit.max_age: 0s must be positive"}},
		{name: "ports out of range", environ: append(slices.Clone(named), "TANDEM_NATS_LISTEN=127.0.0.1:99999", "TANDEM_NATS_LEAF_LISTEN=127.0.0.1:-2",
			"TANDEM_ADMIN_LISTEN=127.0.0.1:70000", "TANDEM_NOTIFIER_PUSH_LISTEN=127.0.0.1:-1"),
			err: []string{`nats.listen: "127.0.0.1:99999": the port is not a number from -1 to 65535`,
				`nats.leaf_listen: "127.0.0.1:-2": the port is not a number from -1 to 65535`,
				`admin.listen: "127.0.0.1:70000": the port is not a number from 0 to 65535`,
				`notifier.push_listen: "127.0.0.1:-1": the port is not a number from 0 to 65535`}},
		{name: "a port by name", environ: append(slices.Clone(named), "TANDEM_ADMIN_LISTEN=127.0.0.1:http"),
			err: []string{`admin.listen: "127.0.0.1:http": the port is not a number from 0 to 65535`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.environ, nil)
			wantErr(t, err, tt.err...)
		})
	}
}

// TestFullExample loads testdata/full.yaml, which sets every key away from
// its default, and checks that the result survives YAML, the environment and
// flags unchanged.
func TestFullExample(t *testing.T) {
	const path = "testdata/full.yaml"
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileKeys(t, data); !slices.Equal(got, Keys()) {
		t.Errorf("%s sets\n%q\nwant every key\n%q", path, got, Keys())
	}
	d := Default()
	for _, k := range Keys() {
		if text(c, k) == text(d, k) {
			t.Errorf("%s: %s = %q, the default", path, k, text(c, k))
		}
	}

	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	environ, flags, args := []string(nil), map[string]string{}, []string(nil)
	for _, k := range Keys() {
		environ = append(environ, EnvVar(k)+"="+text(c, k))
		flags[k] = text(c, k)
		args = append(args, "--"+k+"="+text(c, k))
	}
	fs, set := newFlagSet()
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() (Config, error){
		"yaml":     func() (Config, error) { return Load(writeFile(t, string(out)), nil, nil) },
		"env":      func() (Config, error) { return Load("", environ, nil) },
		"flags":    func() (Config, error) { return Load("", nil, flags) },
		"flag set": func() (Config, error) { return Load("", nil, set()) },
	} {
		got, err := load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", name, got, c)
		}
	}
}

// fileKeys lists the keys a YAML file sets, sorted.
func fileKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := joinKey(prefix, n.Content[i].Value)
			if schema().sections[key] {
				walk(key, n.Content[i+1])
			} else {
				keys = append(keys, key)
			}
		}
	}
	walk("", doc.Content[0])
	slices.Sort(keys)
	return keys
}

// The integer keys (notifier.max_conns, notifier.state_consumers) load from
// the file, the environment and flags; what is not a whole number, or out
// of range, is an error naming the key and the source, and changes nothing.
func TestIntKeys(t *testing.T) {
	c, err := Load(writeFile(t, "pair: shop\nnode: alpha\nnotifier:\n  max_conns: 2000\n"),
		[]string{"TANDEM_NOTIFIER_STATE_CONSUMERS= 150 "}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Notifier.MaxConns != 2000 || c.Notifier.StateConsumers != 150 {
		t.Fatalf("max_conns %d, state_consumers %d; want 2000, 150", c.Notifier.MaxConns, c.Notifier.StateConsumers)
	}
	if d := Default(); d.Notifier.MaxConns != DefaultPushMaxConns || text(d, "notifier.state_consumers") != "1000" {
		t.Fatalf("defaults: max_conns %d, state_consumers %q", d.Notifier.MaxConns, text(d, "notifier.state_consumers"))
	}
	c, err = Load("", named, map[string]string{"notifier.max_conns": "64"})
	if err != nil || c.Notifier.MaxConns != 64 {
		t.Fatalf("flag: %v, max_conns %d", err, c.Notifier.MaxConns)
	}
	for _, tc := range []struct {
		file  string
		env   []string
		flags map[string]string
		want  []string
	}{
		{env: []string{"TANDEM_NOTIFIER_MAX_CONNS=lots"}, want: []string{"environment TANDEM_NOTIFIER_MAX_CONNS", "notifier.max_conns", `"lots": want a whole number`}},
		{env: []string{"TANDEM_NOTIFIER_MAX_CONNS=1e3"}, want: []string{"want a whole number"}},
		{flags: map[string]string{"notifier.state_consumers": "2.5"}, want: []string{"flag --notifier.state_consumers", "want a whole number"}},
		{file: "notifier:\n  max_conns: [1]\n", want: []string{"notifier.max_conns", "want a single value"}},
		{file: "notifier:\n  max_conns: ten\n", want: []string{":4:", "notifier.max_conns", "want a whole number"}},
		{file: "notifier:\n  max_conns: 0\n", want: []string{"notifier.max_conns is 0: want 1 to 1000000"}},
		{env: []string{"TANDEM_NOTIFIER_STATE_CONSUMERS=-5"}, want: []string{"notifier.state_consumers is -5"}},
		{env: []string{"TANDEM_NOTIFIER_STATE_CONSUMERS=1000001"}, want: []string{"notifier.state_consumers is 1000001"}},
		{env: []string{"TANDEM_NOTIFIER_MAX_CONNS=99999999999999999999"}, want: []string{"want a whole number"}},
	} {
		file := ""
		if tc.file != "" {
			file = writeFile(t, "pair: shop\nnode: alpha\n"+tc.file)
		}
		_, err := Load(file, append(slices.Clone(named), tc.env...), tc.flags)
		wantErr(t, err, tc.want...)
	}
}
