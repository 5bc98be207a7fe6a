package natsnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// SeedFileName is the name of role's seed file in a credentials directory
// (config nats.creds_dir).
func SeedFileName(role string) string { return role + ".nk" }

// WriteSeeds creates one nkey user per role and writes its seed to
// dir/<role>.nk, mode 0600, creating dir (0700) if needed. It never
// overwrites a file: if any of the files exists, nothing is written. It
// returns role → public key, for nats.auth.
func WriteSeeds(dir string, roles []string) (map[string]string, error) {
	for _, r := range roles {
		if !config.ValidAuthRole(r) {
			return nil, fmt.Errorf("role %q: unknown (want one of %v)", r, config.AuthRoles)
		}
		p := filepath.Join(dir, SeedFileName(r))
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s exists; not overwriting it (remove it to make a new key)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pubs := make(map[string]string, len(roles))
	for _, r := range roles {
		pub, err := writeSeed(filepath.Join(dir, SeedFileName(r)))
		if err != nil {
			return nil, err
		}
		pubs[r] = pub
	}
	return pubs, nil
}

// writeSeed creates a user nkey and writes its seed to path, which must not
// exist, and returns its public key.
func writeSeed(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("create nkey: %w", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	defer clear(seed)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(seed)
	if err == nil {
		_, err = f.Write([]byte{'\n'})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pub, nil
}

// WriteSessionSeed writes dir/session-<name>.nk, a new per-client session
// key (never overwriting one), and returns its public key.
func WriteSessionSeed(dir, name string) (path, pub string, err error) {
	if !config.ValidSessionName(name) {
		return "", "", fmt.Errorf("session name %q: want 1-64 of A-Z a-z 0-9 _ -", name)
	}
	return writeNewSeed(filepath.Join(dir, "session-"+name+".nk"))
}

// WriteWitnessSeed writes dir/witness-<pair>.nk, a new key for pair's nodes
// at the witness (witness.creds; its public key goes into the witness's
// witness.pairs), never overwriting one, and returns its public key.
func WriteWitnessSeed(dir, pair string) (path, pub string, err error) {
	if err := subject.CheckName("pair", pair); err != nil {
		return "", "", err
	}
	return writeNewSeed(filepath.Join(dir, "witness-"+pair+".nk"))
}

// writeNewSeed writes a new key's seed to path, which must not exist,
// creating its directory (0700) if needed.
func writeNewSeed(path string) (string, string, error) {
	if _, err := os.Lstat(path); err == nil {
		return "", "", fmt.Errorf("%s exists; not overwriting it (remove it to make a new key)", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", err
	}
	pub, err := writeSeed(path)
	return path, pub, err
}
