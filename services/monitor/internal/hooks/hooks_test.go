package hooks

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestEnvironmentAndExitCode(t *testing.T) {
	r := Run(context.Background(), Spec{
		Command: `echo "$TANDEM_PAIR $TANDEM_NODE $TANDEM_ROLE $TANDEM_STATE $TANDEM_EPOCH"; exit 3`,
		Pair:    "p", Node: "a", Role: "master", State: "active", Epoch: 42, Timeout: 10 * time.Second,
	})
	if r.ExitCode != 3 || r.Err == nil {
		t.Fatalf("exit %d err %v", r.ExitCode, r.Err)
	}
	if got := strings.TrimSpace(r.Output); got != "p a master active 42" {
		t.Fatalf("hook saw %q", got)
	}
}

func TestTimeoutKills(t *testing.T) {
	r := Run(context.Background(), Spec{Command: "sleep 30", Timeout: 200 * time.Millisecond})
	if r.Err == nil || !strings.Contains(r.Err.Error(), "time limit") {
		t.Fatalf("err %v", r.Err)
	}
	if r.Duration > 20*time.Second {
		t.Fatalf("the hook was not killed: ran %v", r.Duration)
	}
}

func TestWithoutShell(t *testing.T) {
	old := shell
	shell = "/nonexistent/sh"
	defer func() { shell = old }()
	r := Run(context.Background(), Spec{Command: "true", Timeout: 10 * time.Second})
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	if r := Run(context.Background(), Spec{Command: "  ", Timeout: time.Second}); r.Err == nil {
		t.Fatal("an empty command ran")
	}
}
