package dashboard

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
)

// Access is who may open the dashboard: the push endpoint's rule. With
// credentials (bearer tokens, or user:password pairs for basic auth) every
// request must carry one of them, and the actions are offered; without, the
// dashboard is open, read-only, when its address is a loopback one, and
// refused otherwise.
type Access struct {
	Tokens   []string
	Users    map[string]string // user → password
	Loopback bool              // the dashboard's address is a loopback one
}

// Errors of Check.
var (
	ErrNoCredentials  = errors.New("no credentials given")
	ErrBadCredentials = errors.New("wrong credentials")
	ErrNotLoopback    = errors.New("the dashboard listens beyond loopback and has no credentials: set admin.tokens_file or admin.users_file, or listen on 127.0.0.1")
)

// Secured reports whether credentials are configured (and the actions shown).
func (a Access) Secured() bool { return len(a.Tokens) > 0 || len(a.Users) > 0 }

// Check is the access rule: nil when r may see the dashboard.
func (a Access) Check(r *http.Request) error {
	if !a.Secured() {
		if a.Loopback {
			return nil
		}
		return ErrNotLoopback
	}
	if tok, ok := api.BearerToken(r.Header.Get("Authorization")); ok {
		return match(a.Tokens, tok)
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return ErrNoCredentials
	}
	want, known := a.Users[user]
	if subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 || !known {
		return ErrBadCredentials
	}
	return nil
}

func match(tokens []string, tok string) error {
	valid := 0
	for _, t := range tokens {
		valid |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	if valid != 1 {
		return ErrBadCredentials
	}
	return nil
}

// LoadAccess reads the credentials files ("" for none) for a dashboard on
// listen. A file that is named but missing is an error: a typo must not
// open the dashboard.
func LoadAccess(listen, tokensFile, usersFile string) (Access, error) {
	a := Access{Loopback: config.Loopback(listen), Users: map[string]string{}}
	if tokensFile != "" {
		lines, err := ReadLines(tokensFile)
		if err != nil {
			return Access{}, fmt.Errorf("admin.tokens_file: %w", err)
		}
		a.Tokens = lines
	}
	if usersFile != "" {
		lines, err := ReadLines(usersFile)
		if err != nil {
			return Access{}, fmt.Errorf("admin.users_file: %w", err)
		}
		for i, l := range lines {
			user, pass, ok := strings.Cut(l, ":")
			if !ok || user == "" || pass == "" {
				return Access{}, fmt.Errorf("admin.users_file: %s: entry %d is not user:password", usersFile, i+1)
			}
			a.Users[user] = pass
		}
	}
	return a, nil
}

// ReadLines reads the non-empty lines of path that are not # comments (a
// tokens or users file).
func ReadLines(path string) ([]string, error) { return config.ReadLines(path) }
