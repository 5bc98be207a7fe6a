// Package license is the license document shared by the vendor's side of the
// CLI (tandem license keygen, issue) and the license service of every node
// (SPEC §6 L1): a JSON payload signed with Ed25519, carried in a text armour
// that survives mail and copy-and-paste.
//
// # Format
//
//	-----BEGIN TANDEM LICENSE-----
//	Id: 2f1c…
//	Customer: ACME GmbH
//	Features: audit,sessions
//	Expires: 2027-11-30
//
//	<base64 of signature (64 bytes) followed by the payload JSON, 64 columns>
//	-----END TANDEM LICENSE-----
//
// The body (standard base64, padded, strictly decoded) holds the Ed25519
// signature over SignedPrefix + payload, then the payload itself. The header
// lines are for people; each one that is present must agree with the signed
// payload, so altering any byte of the block either breaks the signature,
// breaks the base64, or contradicts the payload. Lines may be indented or end
// in CR (mail clients do that); text before BEGIN and after END is ignored.
//
// Decode checks the form and never the signature; Verify checks the
// signature against a public key; Payload.CheckTime checks the validity
// window. Open does all three in that order, the way a node takes a license.
package license

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Limits of what Decode accepts.
const (
	// MaxArmoredSize is the largest license text accepted (a mailed file
	// with some text around the block is still far below).
	MaxArmoredSize = 16 << 10
	// MaxPayloadSize is the largest signed payload.
	MaxPayloadSize = 8 << 10
	// MaxFeatures is the most features one license may grant.
	MaxFeatures = 64
)

// Version is the payload schema version.
const Version = 1

// DateLayout is the layout of Expires.
const DateLayout = "2006-01-02"

// SignedPrefix is prepended to the payload before signing, so that a Tandem
// license signature cannot be confused with a signature made by the same key
// for anything else.
const SignedPrefix = "tandem-license-v1\x00"

// Sentinel errors callers branch on; every error of this package wraps one.
var (
	ErrMalformed    = errors.New("malformed license")
	ErrTooLarge     = errors.New("license too large")
	ErrBadSignature = errors.New("license signature invalid")
	ErrExpired      = errors.New("license expired")
	ErrNotYetValid  = errors.New("license issued in the future")
	ErrWrongPair    = errors.New("license of another pair")
)

// Payload is what the vendor signs.
type Payload struct {
	V        int       `json:"v"`
	ID       string    `json:"id"`
	Customer string    `json:"customer"`
	Product  string    `json:"product"`
	Features []string  `json:"features"`
	Seats    int       `json:"seats"`
	Issued   time.Time `json:"issued"`
	// Expires is the last day (UTC) on which the license is valid,
	// YYYY-MM-DD.
	Expires string `json:"expires"`
	// Pair binds the license to one pair: a node of another pair refuses
	// it. Licenses issued before the field existed have none and are
	// accepted by any pair (see the README's licenses section).
	Pair string `json:"pair,omitempty"`
}

var (
	idRE      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	featureRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// Validate checks every field.
func (p Payload) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case p.V != Version:
		return bad("schema version %d, want %d", p.V, Version)
	case !idRE.MatchString(p.ID):
		return bad("id %q: want 1-64 of [A-Za-z0-9_-]", p.ID)
	case !printable(p.Customer, 200):
		return bad("customer %q: want 1-200 printable characters", p.Customer)
	case !printable(p.Product, 64):
		return bad("product %q: want 1-64 printable characters", p.Product)
	case len(p.Features) == 0 || len(p.Features) > MaxFeatures:
		return bad("%d features: want 1-%d", len(p.Features), MaxFeatures)
	case p.Seats < 1:
		return bad("seats %d: want at least 1", p.Seats)
	case p.Issued.IsZero():
		return bad("no issue time")
	case p.Pair != "" && !subject.ValidName(p.Pair):
		return bad("pair %q: want [a-z0-9][a-z0-9-]{0,31}", p.Pair)
	}
	for _, f := range p.Features {
		if !featureRE.MatchString(f) {
			return bad("feature %q: want [a-z0-9][a-z0-9_-]{0,63}", f)
		}
	}
	exp, err := time.Parse(DateLayout, p.Expires)
	if err != nil {
		return bad("expires %q: want YYYY-MM-DD", p.Expires)
	}
	if !exp.Add(24 * time.Hour).After(p.Issued) {
		return bad("expires %s before it was issued (%s)", p.Expires, p.Issued.UTC().Format(time.RFC3339))
	}
	return nil
}

// printable reports whether s has 1 to max runes, none of them a control
// character (so it fits on a header line).
func printable(s string, max int) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	n := 0
	for _, r := range s {
		n++
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return n <= max
}

// ExpiresAt is the first instant at which the license is no longer valid:
// the end of its Expires day, UTC.
func (p Payload) ExpiresAt() time.Time {
	d, err := time.Parse(DateLayout, p.Expires)
	if err != nil {
		return time.Time{}
	}
	return d.Add(24 * time.Hour)
}

// Has reports whether the license grants feature.
func (p Payload) Has(feature string) bool { return slices.Contains(p.Features, feature) }

// CheckPair checks that the license may be used by pair: bound to it, or
// to no pair at all.
func (p Payload) CheckPair(pair string) error {
	if p.Pair != "" && p.Pair != pair {
		return fmt.Errorf("%w: issued for pair %q, this is pair %q", ErrWrongPair, p.Pair, pair)
	}
	return nil
}

// CheckTime checks that the license is valid at now: issued no later than
// tolerance after now (a clock slightly behind the vendor's), and not
// expired.
func (p Payload) CheckTime(now time.Time, tolerance time.Duration) error {
	if p.Issued.After(now.Add(tolerance)) {
		return fmt.Errorf("%w: issued %s, %v ahead of this node's clock (tolerance %v)",
			ErrNotYetValid, p.Issued.UTC().Format(time.RFC3339), p.Issued.Sub(now).Round(time.Second), tolerance)
	}
	if !now.Before(p.ExpiresAt()) {
		return fmt.Errorf("%w: valid until the end of %s (UTC)", ErrExpired, p.Expires)
	}
	return nil
}

// Signed is a decoded license: the payload, the exact bytes that were
// signed, and the signature.
type Signed struct {
	Payload
	raw []byte // payload JSON exactly as signed
	sig []byte
}

// Raw is the signed payload JSON.
func (s *Signed) Raw() []byte { return slices.Clone(s.raw) }

// Verify checks the signature against pub.
func (s *Signed) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadSignature, len(pub))
	}
	if !ed25519.Verify(pub, signedMessage(s.raw), s.sig) {
		return fmt.Errorf("%w: not signed by the vendor key this node trusts, or altered since", ErrBadSignature)
	}
	return nil
}

// Armor is the license text (see the package doc).
func (s *Signed) Armor() []byte { return armor(s.Payload, s.sig, s.raw) }

func signedMessage(raw []byte) []byte {
	return append([]byte(SignedPrefix), raw...)
}

// Sign validates p, signs it with priv and returns the license.
func Sign(priv ed25519.PrivateKey, p Payload) (*Signed, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	p.Issued = p.Issued.UTC().Truncate(time.Second)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode license: %w", err)
	}
	if len(raw) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: payload of %d bytes, limit %d", ErrTooLarge, len(raw), MaxPayloadSize)
	}
	return &Signed{Payload: p, raw: raw, sig: ed25519.Sign(priv, signedMessage(raw))}, nil
}

// Open decodes a license, verifies its signature with pub and checks that it
// is valid at now (see CheckTime): what a node does before it stores one.
func Open(data []byte, pub ed25519.PublicKey, now time.Time, tolerance time.Duration) (*Signed, error) {
	s, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if err := s.Verify(pub); err != nil {
		return nil, err
	}
	if err := s.CheckTime(now, tolerance); err != nil {
		return nil, err
	}
	return s, nil
}

// decodePayload strictly decodes and validates signed payload bytes.
func decodePayload(raw []byte) (Payload, error) {
	var p Payload
	if err := event.DecodeStrict(raw, MaxPayloadSize, &p); err != nil {
		if errors.Is(err, event.ErrTooLarge) {
			return Payload{}, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return Payload{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if err := p.Validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// headerValues are the header lines of a payload, in order.
func headerValues(p Payload) [][2]string {
	h := [][2]string{
		{"Id", p.ID},
		{"Customer", p.Customer},
		{"Product", p.Product},
		{"Features", strings.Join(p.Features, ",")},
		{"Seats", strconv.Itoa(p.Seats)},
		{"Issued", p.Issued.UTC().Format(time.RFC3339)},
		{"Expires", p.Expires},
	}
	if p.Pair != "" {
		h = append(h, [2]string{"Pair", p.Pair})
	}
	return h
}
