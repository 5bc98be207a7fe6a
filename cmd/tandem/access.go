package main

// What the NATS server refused these credentials, told once and plainly.
// Every client command configures its connection in globals.authOptions,
// which installs access.asyncError; every command's error passes through
// access.explain (newRoot wraps each command's RunE with it, and tandem check
// calls it for its own line). So a command run without credentials, or with
// another role's, fails with which credentials were used, that they lack
// this command's permission, and which key to use — at the first refusal,
// not after the whole timeout, and without nats.go's raw "permissions
// violation" lines, whose subject (the first request the server dropped) is
// often not the cause.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/config"
)

// access is one command line's record of the server's refusals.
type access struct {
	mu     sync.Mutex // guards the fields below
	creds  string     // the credentials file used, "" for none
	role   string     // the role the command needs (config.Role*)
	denied error      // the first permission violation
	stop   func()     // ends the command's context (explainRefusals)
}

// run runs a command's RunE so that a refusal ends its context (every
// wait of the command returns at once) and its error is explained.
func (a *access) run(c *cobra.Command, args []string, run func(*cobra.Command, []string) error) error {
	ctx, cancel := context.WithCancel(c.Context())
	defer cancel()
	a.mu.Lock()
	a.stop = cancel
	a.mu.Unlock()
	c.SetContext(ctx)
	return a.explain(run(c, args))
}

// keepOpen: a session agent is not ended by a refusal, it follows on with
// what it may do and warns on stderr. Under a.mu.
func (a *access) keepOpen() bool { return a.role == config.RoleSession }

// use records what the command connects with (authOptions).
func (a *access) use(creds, role string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds, a.role = creds, role
}

// asyncError is the connection's error handler. A permission violation is
// recorded and ends the connection, so that what waits on it fails at once
// and explain tells why; other errors are printed as nats.go would.
func (a *access) asyncError(nc *nats.Conn, _ *nats.Subscription, err error) {
	switch {
	case !errors.Is(err, nats.ErrPermissionViolation):
		fmt.Fprintln(os.Stderr, err) // as nats.go's default handler does
		return
	case incidentalDenial(err):
		return
	}
	a.mu.Lock()
	first := a.denied == nil
	if first {
		a.denied = err
	}
	stop, keepOpen := a.stop, a.keepOpen()
	a.mu.Unlock()
	switch {
	case !first:
	case keepOpen:
		fmt.Fprintf(os.Stderr, "tandem: %v\n", a.explain(err))
	default:
		if stop != nil {
			stop()
		}
		go nc.Close() // not from the handler's own goroutine
	}
}

// incidentalDenial is a refusal that stops nothing: the admin role is
// read-only and may not delete the ordered consumers nats.go cleans up
// (pkg/natsnode).
func incidentalDenial(err error) bool {
	return strings.Contains(err.Error(), "$JS.API.CONSUMER.DELETE.")
}

// explain turns err into the plain refusal when the server refused these
// credentials (at connect, or a permission later: then even a command that
// ended without error, its context ended, has failed); any other error, and
// an exit status already printed (tandem check), is returned as it is.
func (a *access) explain(err error) error {
	var ee *exitError
	if a == nil || errors.As(err, &ee) {
		return err
	}
	a.mu.Lock()
	creds, role, denied, keepOpen := a.creds, a.role, a.denied, a.keepOpen()
	a.mu.Unlock()
	switch {
	case role == "": // no client connection (tandem node, hub, witness…): their own errors
		return err
	case err == nil && (denied == nil || keepOpen):
		return nil
	case denied != nil:
		return fmt.Errorf("%s may not run this command (the server refused to %s); %s",
			who(creds), refusal(denied), useKey(role))
	case isAuthViolation(err) && creds == "":
		return fmt.Errorf("the server requires credentials and none were given (--creds, $TANDEM_CREDS or creds: in client.yaml); %s", useKey(role))
	case isAuthViolation(err):
		return fmt.Errorf("the server does not accept %s (its public key is not in the nodes' nats.auth or nats.sessions, nor a fleet hub's hub.auth, or was removed); %s", who(creds), useKey(role))
	}
	return err
}

func isAuthViolation(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// who names the credentials: the file and, for an nkey seed, its user.
func who(creds string) string {
	if creds == "" {
		return "a connection without credentials"
	}
	s := "the credentials " + creds
	if data, err := os.ReadFile(creds); err == nil {
		defer clear(data)
		if kp, err := nkeys.FromSeed(bytes.TrimSpace(data)); err == nil {
			if pub, err := kp.PublicKey(); err == nil {
				s += " (user " + pub + ")"
			}
		}
	}
	return s
}

// refusal is what the server refused, from nats.go's error: "publish to
// tandem.p.admin._pair.status", "subscribe to _INBOX_admin.…".
func refusal(err error) string {
	s := err.Error()
	for _, verb := range []struct{ in, out string }{{"Publish to ", "publish to "}, {"Subscription to ", "subscribe to "}} {
		if _, rest, ok := strings.Cut(s, verb.in); ok {
			subj, _, _ := strings.Cut(strings.Trim(rest, `"`), `"`)
			return verb.out + subj
		}
	}
	return s
}

// useKey says which key the command needs.
func useKey(role string) string {
	if role == config.RoleSession {
		return "a session needs a session key: --creds <nats.creds_dir>/session.nk, or its own from tandem auth session NAME"
	}
	return "this command needs the admin role's key: --creds <nats.creds_dir>/admin.nk (tandem auth init); through a fleet hub, its admin key (its reader key only reads: status, fleet status, audit)"
}
