// Package contact is the standby's proof of contact with its master (SPEC
// §9, L4): the standby sends a Challenge with a fresh random nonce, the
// master answers with its node's Ed25519 key over (pair, master, standby,
// nonce, its time). Only an Answer to a challenge the standby itself just
// made proves contact, so a stored or replayed answer proves nothing, and
// only the master's private key can make one: a copied bucket, an edited
// state file or a rogue process cannot refresh the grace.
//
// The standby pins the master's public key: given by the operator (the file
// KeyFile in the license service's directory, which `tandem auth init`
// style provisioning may write), or else taken from the first answer (trust
// on first use) and written there. Without the pin a stored proof is not
// trusted.
//
// Sign and Verify are pure; the key files are read and written by LoadKey,
// LoadOrCreateKey and Pin.
package contact

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Version is the schema version of challenges and answers.
const Version = 1

// MaxSize bounds a challenge or an answer on the wire.
const MaxSize = 2 << 10

// File names in the license service's directory.
const (
	SeedFile = "node.key"   // the master's private key (base64 seed)
	KeyFile  = "master.pub" // the standby's pinned master key (base64)
)

// Challenge is the standby's question.
type Challenge struct {
	V       int    `json:"v"`
	Pair    string `json:"pair"`
	Standby string `json:"standby"`
	Nonce   string `json:"nonce"` // 32 random bytes, base64
}

// Answer is the master's signed reply to one challenge.
type Answer struct {
	V       int       `json:"v"`
	Pair    string    `json:"pair"`
	Master  string    `json:"master"`
	Standby string    `json:"standby"`
	Nonce   string    `json:"nonce"`
	Time    time.Time `json:"time"` // the master's clock when it answered
	Key     string    `json:"key"`  // the master's public key, base64
	Sig     string    `json:"sig"`  // base64 Ed25519 over Message()
}

// NewChallenge makes a challenge with a fresh nonce.
func NewChallenge(pair, standby string) (Challenge, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Challenge{}, fmt.Errorf("nonce: %w", err)
	}
	return Challenge{V: Version, Pair: pair, Standby: standby, Nonce: base64.StdEncoding.EncodeToString(b)}, nil
}

// Check validates a challenge the master received for pair.
func (c Challenge) Check(pair string) error {
	n, err := base64.StdEncoding.DecodeString(c.Nonce)
	switch {
	case c.V != Version:
		return fmt.Errorf("challenge version %d, want %d", c.V, Version)
	case c.Pair != pair:
		return fmt.Errorf("challenge for pair %q, this is %q", c.Pair, pair)
	case c.Standby == "" || len(c.Standby) > 32:
		return errors.New("challenge names no standby")
	case err != nil || len(n) != 32:
		return errors.New("challenge nonce is not 32 bytes of base64")
	}
	return nil
}

// Message is what the signature covers.
func (a Answer) Message() []byte {
	return []byte(strings.Join([]string{"tandem-contact-v1", a.Pair, a.Master, a.Standby, a.Nonce,
		a.Time.UTC().Format(time.RFC3339Nano), a.Key}, "\n"))
}

// Sign answers c as master at now with key.
func Sign(key ed25519.PrivateKey, c Challenge, master string, now time.Time) Answer {
	a := Answer{V: Version, Pair: c.Pair, Master: master, Standby: c.Standby, Nonce: c.Nonce, Time: now.UTC(),
		Key: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
	a.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, a.Message()))
	return a
}

// Errors of Verify the caller branches on.
var (
	ErrWrongKey = errors.New("the answer is signed by another key than the pinned master key")
	ErrBadSig   = errors.New("the answer's signature does not verify")
)

// Verify checks that a answers challenge c (nonce, pair, standby) from
// master, signed by pinned (nil: by the key the answer carries, which the
// caller is about to pin). It returns the signing key.
func Verify(a Answer, c Challenge, master string, pinned ed25519.PublicKey) (ed25519.PublicKey, error) {
	if a.V != Version || a.Pair != c.Pair || a.Standby != c.Standby || a.Nonce != c.Nonce {
		return nil, errors.New("the answer is not to this challenge")
	}
	if master != "" && a.Master != master {
		return nil, fmt.Errorf("the answer comes from %q, not the master %q", a.Master, master)
	}
	return VerifyProof(a, pinned)
}

// VerifyProof checks a stored answer's signature against pinned (nil: the
// key it carries). It returns the signing key.
func VerifyProof(a Answer, pinned ed25519.PublicKey) (ed25519.PublicKey, error) {
	key, err := base64.StdEncoding.DecodeString(a.Key)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, errors.New("the answer carries no valid public key")
	}
	if pinned != nil && !pinned.Equal(ed25519.PublicKey(key)) {
		return nil, ErrWrongKey
	}
	sig, err := base64.StdEncoding.DecodeString(a.Sig)
	if err != nil || !ed25519.Verify(key, a.Message(), sig) {
		return nil, ErrBadSig
	}
	return key, nil
}

// LoadOrCreateKey reads the master's private key in dir, or makes one.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, SeedFile)
	b, err := os.ReadFile(path)
	if err == nil {
		seed, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("node key %s is damaged", path)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node key dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write node key: %w", err)
	}
	return priv, nil
}

// LoadKey reads the pinned master key in dir; nil, nil when there is none.
func LoadKey(dir string) (ed25519.PublicKey, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pinned master key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("pinned master key %s is damaged", path)
	}
	return key, nil
}

// KeyPinned reports whether dir still holds a pinned master key file
// (false only when it is gone: a file that cannot be read stays pinned).
func KeyPinned(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, KeyFile))
	return !errors.Is(err, fs.ErrNotExist)
}

// Pin writes key as the pinned master key in dir.
func Pin(dir string, key ed25519.PublicKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin master key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("pin master key: %w", err)
	}
	return nil
}
