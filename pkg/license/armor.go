package license

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// Armour delimiters.
const (
	beginLine = "-----BEGIN TANDEM LICENSE-----"
	endLine   = "-----END TANDEM LICENSE-----"
	lineWidth = 64
)

var b64 = base64.StdEncoding.Strict()

func armor(p Payload, sig, raw []byte) []byte {
	var b bytes.Buffer
	b.WriteString(beginLine + "\n")
	for _, h := range headerValues(p) {
		fmt.Fprintf(&b, "%s: %s\n", h[0], h[1])
	}
	b.WriteString("\n")
	body := b64.EncodeToString(append(append([]byte{}, sig...), raw...))
	for len(body) > lineWidth {
		b.WriteString(body[:lineWidth] + "\n")
		body = body[lineWidth:]
	}
	b.WriteString(body + "\n" + endLine + "\n")
	return b.Bytes()
}

// Decode parses license text: exactly one armoured block (text around it is
// ignored), strict base64, a strictly decoded and valid payload, and header
// lines that agree with it. It does not check the signature (Verify).
func Decode(data []byte) (*Signed, error) {
	if len(data) > MaxArmoredSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxArmoredSize)
	}
	headers, body, err := split(data)
	if err != nil {
		return nil, err
	}
	bin, err := b64.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body is not base64: %v", ErrMalformed, err)
	}
	if len(bin) <= ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: body of %d bytes holds no payload", ErrMalformed, len(bin))
	}
	sig, raw := bin[:ed25519.SignatureSize], bin[ed25519.SignatureSize:]
	p, err := decodePayload(raw)
	if err != nil {
		return nil, err
	}
	if err := checkHeaders(headers, p); err != nil {
		return nil, err
	}
	return &Signed{Payload: p, raw: bytes.Clone(raw), sig: bytes.Clone(sig)}, nil
}

// split finds the block and returns its header lines and its body with the
// line breaks removed.
func split(data []byte) ([][2]string, string, error) {
	lines := strings.Split(string(data), "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == beginLine {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, "", fmt.Errorf("%w: no %q line (is this a Tandem license?)", ErrMalformed, beginLine)
	}
	var headers [][2]string
	var body strings.Builder
	inBody := false
	for _, l := range lines[start+1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == endLine:
			if body.Len() == 0 {
				return nil, "", fmt.Errorf("%w: empty body", ErrMalformed)
			}
			return headers, body.String(), nil
		case l == beginLine:
			return nil, "", fmt.Errorf("%w: a second BEGIN line before END", ErrMalformed)
		case !inBody && l == "":
			inBody = true
		case !inBody:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, "", fmt.Errorf("%w: header line %q has no colon (a blank line must separate headers from the body)", ErrMalformed, l)
			}
			headers = append(headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		case l != "":
			body.WriteString(l)
		}
	}
	return nil, "", fmt.Errorf("%w: no %q line (truncated?)", ErrMalformed, endLine)
}

// checkHeaders refuses unknown or repeated headers and any header that does
// not say what the signed payload says.
func checkHeaders(headers [][2]string, p Payload) error {
	want := map[string]string{}
	for _, h := range headerValues(p) {
		want[h[0]] = h[1]
	}
	seen := map[string]bool{}
	for _, h := range headers {
		w, ok := want[h[0]]
		switch {
		case !ok:
			return fmt.Errorf("%w: unknown header %q", ErrMalformed, h[0])
		case seen[h[0]]:
			return fmt.Errorf("%w: header %q repeated", ErrMalformed, h[0])
		case h[1] != w:
			return fmt.Errorf("%w: header %s says %q but the signed license says %q (altered?)", ErrMalformed, h[0], h[1], w)
		}
		seen[h[0]] = true
	}
	return nil
}
