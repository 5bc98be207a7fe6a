package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Bad driver choices are refused with a one-line error before anything
// connects or changes.
func TestSessionDriverBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []string{"session", "--server", "nats://127.0.0.1:1", "--pair", "p", "--name", "ws1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--driver", "lpd"}, "want none, cups, windows or exec"},
		{[]string{"--driver", "cups", "--resource", `\\print-a\x`}, "no --resource"},
		{[]string{"--driver", "exec", "--resource", "sip://pbx-a/1"}, "--exec: a command is required"},
		{[]string{"--driver", "exec", "--exec", "true"}, "at least one --resource"},
		{[]string{"--exec", "true", "--resource", "x"}, "--exec is for --driver exec"},
		{[]string{"--driver", "windows"}, "Windows only"},
	} {
		var out, errOut bytes.Buffer
		code := run(ctx, append(append([]string(nil), base...), c.args...), &out, &errOut)
		msg := strings.TrimSuffix(errOut.String(), "\n")
		if code == 0 || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, code, errOut.String(), c.want)
		}
	}
}
