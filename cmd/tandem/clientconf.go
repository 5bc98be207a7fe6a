package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// clientDefaults are the defaults of the client flags: built in, then the
// client file, then the environment (each overriding the one before); flags
// given on the command line override them all.
type clientDefaults struct {
	Server string `yaml:"server"`
	Pair   string `yaml:"pair"`
	Creds  string `yaml:"creds"`
	TLSCA  string `yaml:"tls_ca"`
	// File is the client file read, "" if there was none.
	File string `yaml:"-"`
	// Err is why the client file could not be read; commands that talk to
	// a pair report it.
	Err error `yaml:"-"`
}

// defaultServer is the built-in --server (SPEC §8).
const defaultServer = "nats://127.0.0.1:4222"

// clientFileLimit bounds the client file.
const clientFileLimit = 64 << 10

// userConfigDir is $XDG_CONFIG_HOME or ~/.config on Linux; "" if unknown.
func userConfigDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return dir
}

// loadClientDefaults reads configDir/tandem/client.yaml (if it exists) and
// the variables TANDEM_SERVER, TANDEM_PAIR, TANDEM_CREDS, TANDEM_TLS_CA.
func loadClientDefaults(getenv func(string) string, configDir string) clientDefaults {
	d := clientDefaults{Server: defaultServer}
	if configDir != "" {
		path := filepath.Join(configDir, "tandem", "client.yaml")
		f, err := readClientFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			d.Err = err
		default:
			d.File = path
			setNonEmpty(&d.Server, f.Server)
			setNonEmpty(&d.Pair, f.Pair)
			setNonEmpty(&d.Creds, f.Creds)
			setNonEmpty(&d.TLSCA, f.TLSCA)
		}
	}
	setNonEmpty(&d.Server, getenv("TANDEM_SERVER"))
	setNonEmpty(&d.Pair, getenv("TANDEM_PAIR"))
	setNonEmpty(&d.Creds, getenv("TANDEM_CREDS"))
	setNonEmpty(&d.TLSCA, getenv("TANDEM_TLS_CA"))
	return d
}

// setNonEmpty sets *dst to v unless v is empty.
func setNonEmpty(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// clientKeys are the keys of the client file.
var clientKeys = []string{"server", "pair", "creds", "tls_ca"}

// readClientFile reads a client file strictly: an unknown or repeated key,
// or a value that is not a single string, is an error naming the file, the
// line and the key (with the known key it was probably meant to be).
func readClientFile(path string) (clientDefaults, error) {
	fh, err := os.Open(path)
	if err != nil {
		return clientDefaults{}, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, clientFileLimit+1))
	if err != nil {
		return clientDefaults{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > clientFileLimit {
		return clientDefaults{}, fmt.Errorf("%s is larger than %d bytes", path, clientFileLimit)
	}
	return parseClientFile(path, b)
}

func parseClientFile(path string, b []byte) (clientDefaults, error) {
	var d clientDefaults
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return d, nil // empty
	}
	known := "keys: " + strings.Join(clientKeys, ", ")
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return d, fmt.Errorf("%s:%d: want a mapping of keys (%s)", path, top.Line, known)
	}
	fields := map[string]*string{"server": &d.Server, "pair": &d.Pair, "creds": &d.Creds, "tls_ca": &d.TLSCA}
	seen := map[string]int{} // key → line
	var errs []error
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		dst, ok := fields[k.Value]
		switch {
		case !ok:
			hint := ""
			if s := closest(k.Value, clientKeys); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q%s (%s)", path, k.Line, k.Value, hint, known))
		case seen[k.Value] > 0:
			errs = append(errs, fmt.Errorf("%s:%d: %s: already set at line %d", path, k.Line, k.Value, seen[k.Value]))
		case v.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("%s:%d: %s: want a single value", path, v.Line, k.Value))
		case v.ShortTag() != "!!null":
			*dst = v.Value
		}
		seen[k.Value] = k.Line
	}
	return d, errors.Join(errs...)
}
