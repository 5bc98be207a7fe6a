package main

import (
	"bytes"
	"context"
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
	} {
		var out, errOut bytes.Buffer
		if got := run(context.Background(), c.args, &out, &errOut); got != c.want {
			t.Errorf("tandem %v: exit %d, want %d (%s)", c.args, got, c.want, errOut.String())
		}
	}
}
