package main

// The command line as an operator meets it: the real binary, its exit
// statuses, where help goes, suggestions, --version, completion, man pages.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/internal/proctest"
)

type binResult struct {
	stdout, stderr string
	code           int
}

// runBinary runs the tandem binary with args, without any client defaults
// of the machine it runs on.
func runBinary(t *testing.T, env []string, args ...string) binResult {
	t.Helper()
	cmd := exec.Command(proctest.Build(t), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("tandem %v: %v", args, err)
	}
	return binResult{out.String(), errOut.String(), cmd.ProcessState.ExitCode()}
}

// commandPaths lists every command of the tree, as argument lists.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		if sub.Hidden || sub.Name() == "help" {
			continue
		}
		path := append(append([]string{}, prefix...), sub.Name())
		out = append(out, path)
		out = append(out, commandPaths(sub, path)...)
	}
	return out
}

func TestBinaryHelpOnEveryCommand(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	paths := commandPaths(root, nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, args := range append(paths, []string{}) {
		for _, help := range []string{"-h", "--help"} {
			r := runBinary(t, nil, append(append([]string{}, args...), help)...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
				t.Errorf("tandem %s %s: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", strings.Join(args, " "), help, r.code, r.stdout, r.stderr)
			}
		}
	}
	for _, args := range paths {
		r := runBinary(t, nil, append([]string{"help"}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "tandem "+strings.Join(args, " ")) || r.stderr != "" {
			t.Errorf("tandem help %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	// Typed flags: a node's durations and maps show as such.
	r := runBinary(t, nil, "node", "-h")
	for _, want := range []string{"--heartbeat.interval duration", "--hosts map", "--config string"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("tandem node -h does not show %q", want)
		}
	}
}

func TestBinaryRefusesWithSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stauts", "--pair", "p"}, 2, `did you mean "status"?`},
		{[]string{"repl", "pasue"}, 2, `did you mean "pause"?`},
		{[]string{"status", "--paer", "p"}, 2, "did you mean --pair?"},
		{[]string{"status", "extra", "--pair", "x"}, 2, `unknown command "extra" for "tandem status"`},
		{[]string{"license", "add"}, 2, "accepts 1 arg"},
		{[]string{"node", "--heartbeat.interval", "soon"}, 2, "heartbeat.interval"},
		{[]string{"check", "--bogus"}, 3, "TANDEM UNKNOWN - unknown flag: --bogus"}, // a monitoring plugin's bad command line is UNKNOWN
		{nil, 2, "Usage:"},
		{[]string{"help", "stauts"}, 2, `did you mean "status"?`},
	} {
		r := runBinary(t, nil, c.args...)
		msg := r.stderr
		if c.code == 3 {
			msg = r.stdout
		}
		if r.code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("tandem %v: exit %d, stdout %q, stderr %q; want %d with %q", c.args, r.code, r.stdout, r.stderr, c.code, c.want)
		}
		if c.code == 2 && c.args != nil && strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") != 0 {
			t.Errorf("tandem %v: the error is not one line: %q", c.args, r.stderr)
		}
	}
}

func TestBinaryVersionCompletionMan(t *testing.T) {
	r := runBinary(t, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "tandem ") || !strings.Contains(r.stdout, "commit ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("--version: exit %d, %q", r.code, r.stdout)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runBinary(t, nil, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "tandem") || len(r.stdout) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, r.code, len(r.stdout), r.stderr)
		}
	}
	dir := filepath.Join(t.TempDir(), "man")
	if r := runBinary(t, nil, "man", "--dir", dir); r.code != 0 {
		t.Fatalf("man: exit %d: %s", r.code, r.stderr)
	}
	for _, page := range []string{"tandem.1", "tandem-status.1", "tandem-check.1", "tandem-repl-verify.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !bytes.Contains(b, []byte(".TH")) {
			t.Errorf("man page %s: %v", page, err)
		}
	}
}

// TestClientDefaults: --server and --pair from the environment and from the
// client file; the flag overrides both; a bad client file is an error.
func TestClientDefaults(t *testing.T) {
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "tandem"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg, "tandem", "client.yaml")
	if err := os.WriteFile(file, []byte("server: nats://file:1\npair: filepair\ncreds: /c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := loadClientDefaults(func(string) string { return "" }, cfg)
	if d.Err != nil || d.Server != "nats://file:1" || d.Pair != "filepair" || d.Creds != "/c" {
		t.Errorf("from the file: %+v", d)
	}
	env := map[string]string{"TANDEM_SERVER": "nats://env:2", "TANDEM_PAIR": "envpair"}
	d = loadClientDefaults(func(k string) string { return env[k] }, cfg)
	if d.Server != "nats://env:2" || d.Pair != "envpair" || d.Creds != "/c" {
		t.Errorf("environment over the file: %+v", d)
	}
	if d := loadClientDefaults(func(string) string { return "" }, t.TempDir()); d.Server != defaultServer || d.Err != nil {
		t.Errorf("no file: %+v", d)
	}
	if err := os.WriteFile(file, []byte("sever: nats://typo:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := loadClientDefaults(func(string) string { return "" }, cfg); d.Err == nil || !strings.Contains(d.Err.Error(), "sever") {
		t.Errorf("unknown key: %+v", d)
	}
	// Through the binary: the pair comes from TANDEM_PAIR (the error names
	// the server, not a missing --pair), the server from TANDEM_SERVER.
	r := runBinary(t, []string{"TANDEM_PAIR=p", "TANDEM_SERVER=nats://127.0.0.1:1"}, "status", "--timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "nats://127.0.0.1:1") {
		t.Errorf("status with TANDEM_PAIR and TANDEM_SERVER: exit %d, %q", r.code, r.stderr)
	}
	r = runBinary(t, []string{"TANDEM_PAIR=p", "TANDEM_SERVER=nats://127.0.0.1:1"}, "check", "--timeout", "200ms")
	if r.code != 3 || !strings.HasPrefix(r.stdout, "TANDEM UNKNOWN - pair p: cannot ask") {
		t.Errorf("check without a server: exit %d, %q", r.code, r.stdout)
	}
}

// TestClientFileBadKeys: an unknown key of client.yaml is refused naming the
// file, the line, the key and the known key it was probably meant to be;
// so are a repeated key and a value that is not a single string. Through the
// binary the file's error comes first, not a "--pair is required" that
// blames the flag the file was meant to give.
func TestClientFileBadKeys(t *testing.T) {
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "tandem"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cfg, "tandem", "client.yaml")
	for name, tt := range map[string]struct{ yaml, want string }{
		"typo":      {"pair: p\nserer: nats://127.0.0.1:1\n", file + `:2: unknown key "serer"; did you mean "server"? (keys: server, pair, creds, tls_ca)`},
		"far off":   {"password: x\n", file + `:1: unknown key "password" (keys: server, pair, creds, tls_ca)`},
		"twice":     {"pair: a\npair: b\n", file + ":2: pair: already set at line 1"},
		"list":      {"pair:\n  - p\n", file + ":2: pair: want a single value"},
		"not a map": {"- server\n", file + ":1: want a mapping of keys"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			d := loadClientDefaults(func(string) string { return "" }, cfg)
			if d.Err == nil || !strings.Contains(d.Err.Error(), tt.want) {
				t.Errorf("error %v; want it to contain %q", d.Err, tt.want)
			}
		})
	}
	if err := os.WriteFile(file, []byte("pair: p\nserer: nats://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"status"}, {"session", "--name", "s1", "--resource", "10.0.0.1"}} {
		r := runBinary(t, []string{"XDG_CONFIG_HOME=" + cfg}, cmd...)
		if r.code != 1 || !strings.Contains(r.stderr, `unknown key "serer"; did you mean "server"?`) || strings.Contains(r.stderr, "--pair") {
			t.Errorf("tandem %v with a typo in client.yaml: exit %d, %q", cmd, r.code, r.stderr)
		}
	}
}
