package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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

// readClientFile reads a client file strictly: an unknown key is an error.
func readClientFile(path string) (clientDefaults, error) {
	var d clientDefaults
	fh, err := os.Open(path)
	if err != nil {
		return d, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, clientFileLimit+1))
	if err != nil {
		return d, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > clientFileLimit {
		return d, fmt.Errorf("%s is larger than %d bytes", path, clientFileLimit)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return d, fmt.Errorf("%s: %w (keys: server, pair, creds, tls_ca)", path, err)
	}
	return d, nil
}
