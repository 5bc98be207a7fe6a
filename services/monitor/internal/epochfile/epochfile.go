// Package epochfile persists a node's epochs (F1: read from disk at start,
// never reset): its own, the highest it has seen from its peer, and the one
// reserved for its next activation, so that an activation after any
// restart goes above every epoch the node has heard of or may have
// announced. Save is atomic and durable: write a temporary file, fsync it, rename it
// over the old one, fsync the directory.
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

// Epochs are what a node persists.
type Epochs struct {
	// Epoch is the node's own epoch.
	Epoch uint64 `json:"epoch"`
	// Seen is the highest epoch seen anywhere (the peer's, or the node's
	// own); a file written before it was kept has none (0).
	Seen uint64 `json:"seen,omitempty"`
	// Reserve is the epoch reserved for the node's next activation, which
	// may be announced before it is written as Epoch (see the failover
	// package's "Reserved epochs"); 0 when none is (a file written at a
	// clean stop, or before reservations were kept).
	Reserve uint64 `json:"reserve,omitempty"`
}

// Load returns the persisted epochs, zero when none were saved yet.
func Load(dir string) (Epochs, error) {
	b, err := os.ReadFile(filepath.Join(dir, Name))
	if errors.Is(err, fs.ErrNotExist) {
		return Epochs{}, nil
	}
	if err != nil {
		return Epochs{}, fmt.Errorf("read epoch: %w", err)
	}
	var c Epochs
	if err := json.Unmarshal(b, &c); err != nil {
		return Epochs{}, fmt.Errorf("read epoch from %s: %w (refusing to start with an unknown epoch)", filepath.Join(dir, Name), err)
	}
	return c, nil
}

// Save durably replaces the persisted epochs.
func Save(dir string, e Epochs) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save epoch: %w", err)
	}
	b, _ := json.Marshal(e)
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
