package statefile

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/license/internal/contact"
	"github.com/tandem-ha/tandem/services/license/internal/grace"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "license")
	if _, ok, err := Load(dir); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Record{V: version, State: grace.State{Contact: now, HighWater: now.Add(time.Hour), Skew: time.Minute}, Level: grace.Warn3,
		Proof: &contact.Answer{V: 1, Pair: "p", Master: "a", Standby: "b", Nonce: "n", Time: now, Key: "k", Sig: "s"}}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(dir)
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v %v", got, ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil {
		t.Fatal("damaged file accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte(`{"v":1,"state":{"contact":"2099-01-01T00:00:00Z"},"level":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil {
		t.Fatal("a version-1 record accepted")
	}
}
