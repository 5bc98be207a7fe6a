package license

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func testPayload() Payload {
	return Payload{V: Version, ID: "lic-1", Customer: "ACME GmbH", Product: "tandem",
		Features: []string{"audit", "sessions"}, Seats: 10, Issued: t0, Expires: "2027-11-30"}
}

func mustSign(t testing.TB, p Payload) (*Signed, []byte) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(priv, p)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

func TestRoundTrip(t *testing.T) {
	s, pub := mustSign(t, testPayload())
	text := s.Armor()
	got, err := Open(append([]byte("Hello,\r\nhere is your license:\r\n\r\n"), text...), pub, t0, 5*time.Minute)
	if err != nil {
		t.Fatalf("open: %v\n%s", err, text)
	}
	if got.ID != "lic-1" || got.Customer != "ACME GmbH" || !got.Has("audit") || got.Has("x") {
		t.Fatalf("payload %+v", got.Payload)
	}
	if !bytes.Equal(got.Armor(), text) {
		t.Fatalf("re-armoured text differs:\n%s\n%s", got.Armor(), text)
	}
	// Mail clients: CRLF and indentation survive.
	crlf := strings.ReplaceAll(string(text), "\n", "\r\n  ")
	if _, err := Open([]byte(crlf), pub, t0, time.Minute); err != nil {
		t.Fatalf("CRLF and indented: %v", err)
	}
	// Headers are optional.
	lines := strings.Split(string(text), "\n")
	var noHeaders []string
	for _, l := range lines {
		if !strings.Contains(l, ": ") {
			noHeaders = append(noHeaders, l)
		}
	}
	if _, err := Open([]byte(strings.Join(noHeaders, "\n")), pub, t0, time.Minute); err != nil {
		t.Fatalf("without headers: %v", err)
	}
}

// TestEveryAlteredByteIsRefused changes each byte of the block in turn.
func TestEveryAlteredByteIsRefused(t *testing.T) {
	s, pub := mustSign(t, testPayload())
	text := s.Armor()
	end := bytes.Index(text, []byte(endLine)) + len(endLine)
	for i := 0; i < end; i++ {
		for _, delta := range []byte{1, 0x20} {
			alt := bytes.Clone(text)
			alt[i] ^= delta
			if _, err := Open(alt, pub, t0, time.Minute); err == nil {
				t.Fatalf("byte %d changed from %q to %q: accepted", i, text[i], alt[i])
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	s, pub := mustSign(t, testPayload())
	other, _ := mustSign(t, testPayload())
	future := testPayload()
	future.Issued = t0.Add(time.Hour)
	fs, fpub := mustSign(t, future)
	cases := []struct {
		name string
		data []byte
		pub  []byte
		now  time.Time
		want error
	}{
		{"garbage", []byte("\x00\x01garbage"), pub, t0, ErrMalformed},
		{"empty", nil, pub, t0, ErrMalformed},
		{"oversized", bytes.Repeat([]byte("A"), MaxArmoredSize+1), pub, t0, ErrTooLarge},
		{"truncated", s.Armor()[:200], pub, t0, ErrMalformed},
		{"other key", other.Armor(), pub, t0, ErrBadSignature},
		{"expired", s.Armor(), pub, time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC), ErrExpired},
		{"last day still valid", s.Armor(), pub, time.Date(2027, 11, 30, 23, 59, 0, 0, time.UTC), nil},
		{"future", fs.Armor(), fpub, t0, ErrNotYetValid},
		{"future within tolerance", fs.Armor(), fpub, t0.Add(56 * time.Minute), nil},
		{"wrong header", bytes.Replace(s.Armor(), []byte("Seats: 10"), []byte("Seats: 99"), 1), pub, t0, ErrMalformed},
		{"unknown header", bytes.Replace(s.Armor(), []byte("Seats: 10"), []byte("Sets: 10"), 1), pub, t0, ErrMalformed},
	}
	for _, c := range cases {
		_, err := Open(c.data, c.pub, c.now, 5*time.Minute)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSignValidates(t *testing.T) {
	_, priv, _ := GenerateKey()
	for name, edit := range map[string]func(*Payload){
		"no features":  func(p *Payload) { p.Features = nil },
		"bad feature":  func(p *Payload) { p.Features = []string{"A B"} },
		"no customer":  func(p *Payload) { p.Customer = "" },
		"newline":      func(p *Payload) { p.Customer = "a\nb" },
		"bad date":     func(p *Payload) { p.Expires = "30.11.2027" },
		"before issue": func(p *Payload) { p.Expires = "2026-01-01" },
		"no seats":     func(p *Payload) { p.Seats = 0 },
	} {
		p := testPayload()
		edit(&p)
		if _, err := Sign(priv, p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	pub, priv, _ := GenerateKey()
	pb, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := ParsePublicKey(pb); err != nil || !p2.Equal(pub) {
		t.Fatalf("public: %v", err)
	}
	if k2, err := ParsePrivateKey(kb); err != nil || !k2.Equal(priv) {
		t.Fatalf("private: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), kb, bytes.Repeat([]byte{'x'}, MaxKeySize+1)} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("public key %q: %v", bad[:min(len(bad), 20)], err)
		}
	}
	if _, err := ParsePrivateKey(pb); !errors.Is(err, ErrBadKey) {
		t.Errorf("private from public: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	s, _ := mustSign(f, testPayload())
	f.Add(s.Armor())
	f.Add([]byte(beginLine + "\n\nAAAA\n" + endLine))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(got.Armor())
		if err != nil {
			t.Fatalf("re-armoured license does not decode: %v", err)
		}
		if !bytes.Equal(again.Raw(), got.Raw()) {
			t.Fatal("payload changed in a round trip")
		}
	})
}
