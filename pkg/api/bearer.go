package api

import "strings"

// BearerToken is the token of an Authorization header of the Bearer
// scheme, the scheme's name in any case (RFC 9110: schemes are
// case-insensitive); ok is false for another scheme or an empty token.
// The push endpoint and the dashboard read their tokens with it.
func BearerToken(header string) (token string, ok bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(header), " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
