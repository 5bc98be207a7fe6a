package license

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Key files are PEM: the public key as "PUBLIC KEY" (PKIX), the private key
// as "PRIVATE KEY" (PKCS #8), the forms openssl and other tools read.
const (
	publicPEM  = "PUBLIC KEY"
	privatePEM = "PRIVATE KEY"
	// MaxKeySize is the largest key file accepted.
	MaxKeySize = 4 << 10
)

// ErrBadKey is wrapped by every key parsing error.
var ErrBadKey = errors.New("bad key file")

// GenerateKey makes a vendor key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// MarshalPublicKey encodes pub as PEM.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicPEM, Bytes: der}), nil
}

// MarshalPrivateKey encodes priv as PEM.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: privatePEM, Bytes: der}), nil
}

// ParsePublicKey decodes a PEM public key file.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	der, err := pemBlock(data, publicPEM)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 public key", ErrBadKey, k)
	}
	return pub, nil
}

// ParsePrivateKey decodes a PEM private key file.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	der, err := pemBlock(data, privatePEM)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 private key", ErrBadKey, k)
	}
	return priv, nil
}

func pemBlock(data []byte, typ string) ([]byte, error) {
	if len(data) > MaxKeySize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadKey, len(data), MaxKeySize)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block (want %q)", ErrBadKey, typ)
	}
	if b.Type != typ {
		return nil, fmt.Errorf("%w: PEM block %q, want %q", ErrBadKey, b.Type, typ)
	}
	return b.Bytes, nil
}
