package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/config"
)

// tandem auth session NAME writes the client's seed and prints the
// nats.sessions line a node's configuration loads.
func TestAuthSession(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nkeys")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"auth", "session", "desk-1", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "session-desk-1.nk")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "node.yaml")
	conf := "pair: p\nnode: a\nnats:\n  auth:\n    leaf: UAFNX4O2YOOKHH2IOO644KSQJC3RNHIBNPBNOCQYZJELB2ZBI33MBONW\n" +
		strings.TrimPrefix(out.String()[strings.Index(out.String(), "nats:\n"):], "nats:\n")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, nil, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if len(c.NATS.Sessions) != 1 || c.NATS.Sessions["desk-1"] == "" {
		t.Fatalf("sessions %v", c.NATS.Sessions)
	}
	if code := run(context.Background(), []string{"auth", "session", "desk-1", "--dir", dir}, &out, &errOut); code == 0 {
		t.Fatal("a second key for desk-1 overwrote the first")
	}
	if code := run(context.Background(), []string{"auth", "session", "bad name", "--dir", dir}, &out, &errOut); code == 0 {
		t.Fatal("a bad session name accepted")
	}
}

// tandem auth witness PAIR writes the pair's key at the witness and prints
// the witness.pairs line `tandem witness` loads; it refuses to overwrite a
// key and a bad pair name.
func TestAuthWitness(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"auth", "witness", "print", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	seed := filepath.Join(dir, "witness-print.nk")
	if fi, err := os.Stat(seed); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", seed, fi, err)
	}
	_, witnessPart, ok := strings.Cut(out.String(), "# The witness")
	if !ok || !strings.Contains(out.String(), "creds: "+seed) {
		t.Fatalf("output: %s", out.String())
	}
	file := filepath.Join(t.TempDir(), "witness.yaml")
	if err := os.WriteFile(file, []byte(witnessPart[strings.Index(witnessPart, "witness:"):]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadWitness(file, nil, map[string]string{"witness.listen": "0.0.0.0:4250"})
	if err != nil || c.Witness.Pairs["print"] == "" {
		t.Fatalf("%v %v", c.Witness.Pairs, err)
	}
	if code := run(context.Background(), []string{"auth", "witness", "print", "--dir", dir}, &out, &errOut); code == 0 {
		t.Fatal("a second key for print overwrote the first")
	}
	if code := run(context.Background(), []string{"auth", "witness", "Print!", "--dir", dir}, &out, &errOut); code == 0 {
		t.Fatal("a bad pair name accepted")
	}
}
