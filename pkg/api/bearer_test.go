package api

import "testing"

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc", " Bearer x y": "x y",
		"Basic abc": "", "Bearer": "", "Bearer ": "", "": "", "Bearerabc": "",
	} {
		tok, ok := BearerToken(h)
		if tok != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", h, tok, ok, want)
		}
	}
}
