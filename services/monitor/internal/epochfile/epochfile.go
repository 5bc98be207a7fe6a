// Package epochfile persists a node's epoch (F1: read from disk at start,
// never reset). Save is atomic and durable: write a temporary file, fsync it,
// rename it over the old one, fsync the directory.
package epochfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Name is the file's name in the monitor's data directory.
const Name = "epoch.json"

type content struct {
	Epoch uint64 `json:"epoch"`
}

// Load returns the persisted epoch, or 0 when none was saved yet.
func Load(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, Name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read epoch: %w", err)
	}
	var c content
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("read epoch from %s: %w (refusing to start with an unknown epoch)", filepath.Join(dir, Name), err)
	}
	return c.Epoch, nil
}

// Save durably replaces the persisted epoch.
func Save(dir string, epoch uint64) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	b, _ := json.Marshal(content{Epoch: epoch})
	tmp, err := os.CreateTemp(dir, Name+".*")
	if err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, Name)); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	defer d.Close()
	return d.Sync()
}
