// Package statefile persists the license service's own record on its node:
// the standby's grace state and the last level it reported. It is written
// atomically (temporary file, fsync, rename, fsync of the directory), so a
// crash leaves the old record or the new one, never half of one.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/services/license/internal/contact"
	"github.com/tandem-ha/tandem/services/license/internal/grace"
)

// Name is the file name in the service's directory.
const Name = "grace.json"

const maxSize = 4 << 10

// version is the record's schema version: 2 carries the master's signed
// answer (Proof); a version-1 record (a stored lease id) is not trusted.
const version = 2

// Record is what is persisted.
type Record struct {
	V     int         `json:"v"`
	State grace.State `json:"state"`
	Level grace.Level `json:"level"` // last level reported by an event
	// Proof is the master's signed answer that set State.Contact (the
	// standby); nil when there was none. The file can be edited: the
	// license service trusts Contact only up to Proof's signed time.
	Proof *contact.Answer `json:"proof,omitempty"`
}

// Load reads dir's record; ok is false when there is none yet.
func Load(dir string) (r Record, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, Name))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read license state: %w", err)
	}
	if err := event.DecodeStrict(b, maxSize, &r); err != nil || r.V != version {
		return Record{}, false, fmt.Errorf("license state %s is damaged (v %d): %v", filepath.Join(dir, Name), r.V, err)
	}
	return r, true, nil
}

// Save writes r to dir atomically.
func Save(dir string, r Record) error {
	r.V = version
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("license state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, Name+".*")
	if err != nil {
		return fmt.Errorf("save license state: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, Name))
	}
	if err != nil {
		return fmt.Errorf("save license state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
