package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Exit codes: 0 for help, 2 for bad usage, 1 for a failed command.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"help"}, 0},
		{[]string{"status", "-h"}, 0},
		{[]string{"status", "--no-such-flag"}, 2},
		{[]string{"no-such-command"}, 2},
		{nil, 2},
		{[]string{"status", "--pair", "p", "--server", "nats://127.0.0.1:1", "--timeout", "200ms"}, 1},
		// Refused before anything is asked (no server here to ask).
		{[]string{"maintenance", "on", "--pair", "p", "--for", "-1m", "--server", "nats://127.0.0.1:1"}, 1},
		{[]string{"maintenance", "on", "--pair", "p", "--for", "0s", "--server", "nats://127.0.0.1:1"}, 1},
	} {
		var out, errOut bytes.Buffer
		if got := run(context.Background(), c.args, &out, &errOut); got != c.want {
			t.Errorf("tandem %v: exit %d, want %d (%s)", c.args, got, c.want, errOut.String())
		}
		if len(c.args) > 0 && c.args[0] == "maintenance" && !strings.Contains(errOut.String(), "a positive duration") {
			t.Errorf("tandem %v: %q, want the --for refusal", c.args, errOut.String())
		}
	}
}
