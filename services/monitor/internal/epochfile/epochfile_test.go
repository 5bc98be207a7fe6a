package epochfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "monitor")
	if e, err := Load(dir); err != nil || e != (Epochs{}) {
		t.Fatalf("fresh: %+v %v", e, err)
	}
	for _, e := range []Epochs{{Epoch: 2, Seen: 2}, {Epoch: 3, Seen: 6}, {Epoch: 1 << 40, Seen: 1 << 40}} {
		if err := Save(dir, e); err != nil {
			t.Fatal(err)
		}
		if got, err := Load(dir); err != nil || got != e {
			t.Fatalf("Load = %+v %v, want %+v", got, err, e)
		}
	}
	// A file of an older version holds the node's own epoch only.
	if err := os.WriteFile(filepath.Join(dir, Name), []byte(`{"epoch":5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(dir); err != nil || got != (Epochs{Epoch: 5}) {
		t.Fatalf("an older file: Load = %+v %v, want epoch 5, nothing seen", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("a corrupt epoch file was accepted")
	}
}
