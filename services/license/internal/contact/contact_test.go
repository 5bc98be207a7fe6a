package contact

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func TestSignVerify(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c, err := NewChallenge("p", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check("p"); err != nil {
		t.Fatal(err)
	}
	a := Sign(key, c, "a", t0)
	pub := key.Public().(ed25519.PublicKey)
	if got, err := Verify(a, c, "a", nil); err != nil || !got.Equal(pub) {
		t.Fatalf("first contact: %v", err)
	}
	if _, err := Verify(a, c, "a", pub); err != nil {
		t.Fatalf("pinned: %v", err)
	}
	if _, err := Verify(a, c, "a", other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("another pinned key: %v", err)
	}
	c2, _ := NewChallenge("p", "b")
	if _, err := Verify(a, c2, "a", pub); err == nil {
		t.Fatal("an answer to an earlier challenge (a replay) verified")
	}
	later := a
	later.Time = t0.Add(time.Hour)
	if _, err := VerifyProof(later, pub); !errors.Is(err, ErrBadSig) {
		t.Fatalf("an altered time: %v", err)
	}
	if _, err := Verify(a, c, "x", pub); err == nil {
		t.Fatal("an answer from another node than the master verified")
	}
}

// FuzzDecodeChallenge: the master's decoder of challenges never panics and
// accepts only what checks.
func FuzzDecodeChallenge(f *testing.F) {
	c, _ := NewChallenge("p", "b")
	b, _ := json.Marshal(c)
	f.Add(b)
	f.Add([]byte(`{"v":1,"pair":"p","standby":"b","nonce":"x"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Challenge
		if err := event.DecodeStrict(in, MaxSize, &c); err != nil {
			return
		}
		_ = c.Check("p")
		var a Answer
		if err := event.DecodeStrict(in, MaxSize, &a); err == nil {
			_, _ = VerifyProof(a, nil)
		}
	})
}
