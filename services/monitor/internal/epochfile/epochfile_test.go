package epochfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "monitor")
	if e, err := Load(dir); err != nil || e != 0 {
		t.Fatalf("fresh: %d %v", e, err)
	}
	for _, e := range []uint64{2, 3, 1 << 40} {
		if err := Save(dir, e); err != nil {
			t.Fatal(err)
		}
		if got, err := Load(dir); err != nil || got != e {
			t.Fatalf("Load = %d %v, want %d", got, err, e)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("a corrupt epoch file was accepted")
	}
}
