package statefile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/license/internal/grace"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "license")
	if _, ok, err := Load(dir); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Record{V: 1, State: grace.State{Contact: now, HighWater: now.Add(time.Hour), Lease: "x"}, Level: grace.Warn3}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(dir)
	if err != nil || !ok || got != want {
		t.Fatalf("got %+v %v %v", got, ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil {
		t.Fatal("damaged file accepted")
	}
}
