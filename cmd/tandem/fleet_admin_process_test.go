//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/fleet"
	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/api"
)

// fleetKeys makes a user nkey per name, writes each seed to dir/<name>.nk
// and returns the public keys.
func fleetKeys(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	pubs := map[string]string{}
	for _, name := range names {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		if err := os.WriteFile(filepath.Join(dir, name+".nk"), seed, 0o600); err != nil {
			t.Fatal(err)
		}
		pubs[name], _ = kp.PublicKey()
	}
	return pubs
}

// TestFleetAdminThroughHub: three `tandem hub` processes with credentials
// (a fleet admin, a fleet reader, the uplink of pair f1 and the sessions of
// f1) and a pair of `tandem node` processes uplinked to them. Through the
// hub (--server = the hub): the fleet reader may read the fleet view but
// not switch over; the admin switches the pair over (sent to the master),
// sets and ends maintenance and verifies replication; a `tandem session`
// agent connected to the hub only, with f1's session key, gets the pair's
// last value and the switchover's notification (SPEC §11).
func TestFleetAdminThroughHub(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub := fleetKeys(t, dir, "admin", "reader", "uplink", "session")
	hubs := proctest.StartHubs(t, "", 3,
		"TANDEM_HUB_AUTH=admin="+pub["admin"]+",reader="+pub["reader"],
		"TANDEM_HUB_UPLINKS=f1="+pub["uplink"], "TANDEM_HUB_SESSIONS=f1="+pub["session"])
	p, st := proctest.StartActive(t, proctest.Options{Pair: "f1", Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(string) map[string]any {
			return map[string]any{"hub.url": proctest.HubURLs(hubs, true), "hub.creds": filepath.Join(dir, "uplink.nk")}
		}})
	hub := proctest.HubURLs(hubs, false)
	as := func(who string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		args = append(args, "--server", hub, "--creds", filepath.Join(dir, who+".nk"))
		code := run(ctx, args, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	waitFleetAs(t, ctx, as, "f1 active on its master", func(m map[string]fleet.Pair) bool { return activeIs(m["f1"], p.Master) })

	// The session holds a resource on the standby's host: the pair's last
	// value, read from the hub, moves it to the active master (N5).
	sess := startHubSession(t, p.Binary(), hub, filepath.Join(dir, "session.nk"), p.Standby+".test")
	waitSessionLine(t, sess, `"from":"`+p.Standby+`","to":"`+p.Master+`"`)

	if _, errOut, code := as("reader", "switchover", "--pair", "f1", "--timeout", "5s"); code == 0 {
		t.Fatal("the fleet reader switched the pair over through the hub")
	} else if !strings.Contains(errOut, "may not run this command (the server refused to publish to tandem.f1.") {
		t.Errorf("the reader's refusal does not say why: %s", errOut)
	}
	if s := p.Status(2 * time.Second); s.Active == nil || *s.Active != p.Master || s.Epoch != st.Epoch {
		t.Fatalf("the reader's refused switchover changed the pair: %+v", s)
	}

	out, errOut, code := as("admin", "switchover", "--pair", "f1", "--json", "--timeout", "10s", "--wait", "30s")
	if code != 0 {
		t.Fatalf("the admin's switchover through the hub: exit %d: %s", code, errOut)
	}
	var after api.PairStatus
	if err := json.Unmarshal([]byte(out), &after); err != nil || after.Active == nil || *after.Active != p.Standby || after.Epoch <= st.Epoch {
		t.Fatalf("after the switchover through the hub: %s (%v)", out, err)
	}
	waitSessionLine(t, sess, `"epoch":`+strconv.FormatUint(after.Epoch, 10)+`,"from":"`+p.Master+`","to":"`+p.Standby+`"`)
	waitFleetAs(t, ctx, as, "f1 active on its standby", func(m map[string]fleet.Pair) bool {
		return activeIs(m["f1"], p.Standby) && m["f1"].Epoch == after.Epoch
	})

	for _, onOff := range []string{"on", "off"} {
		if _, errOut, code := as("admin", "maintenance", onOff, "--pair", "f1", "--timeout", "10s"); code != 0 {
			t.Fatalf("maintenance %s through the hub: exit %d: %s", onOff, code, errOut)
		}
		want := onOff == "on"
		p.WaitStatus("maintenance "+onOff, waitLimit, func(s proctest.Status) bool {
			for _, n := range s.Nodes {
				if n.Maintenance != want {
					return false
				}
			}
			return len(s.Nodes) == 2
		})
	}
	if _, errOut, code := as("reader", "maintenance", "on", "--pair", "f1", "--timeout", "5s"); code == 0 {
		t.Fatal("the fleet reader set maintenance through the hub")
	} else {
		t.Logf("reader's maintenance refused: %s", strings.TrimSpace(errOut))
	}
	if out, errOut, code := as("admin", "repl", "verify", "--pair", "f1", "--timeout", "10s"); code != 0 {
		t.Fatalf("repl verify through the hub: exit %d: %s%s", code, out, errOut)
	}
}

// waitFleetAs polls `tandem fleet status --json` (as the fleet reader)
// until ok holds.
func waitFleetAs(t *testing.T, ctx context.Context, as func(string, ...string) (string, string, int), what string, ok func(map[string]fleet.Pair) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, errOut, code := as("reader", "fleet", "status", "--json", "--timeout", "10s")
		last = out + errOut
		var v fleet.View
		if code == 0 && json.Unmarshal([]byte(out), &v) == nil {
			m := map[string]fleet.Pair{}
			for _, p := range v.Pairs {
				m[p.PairStatus.Pair] = p
			}
			if ok(m) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("fleet view: %s never came; last: %s", what, last)
}

// startHubSession runs `tandem session` for pair f1 against the hub only,
// with f1's session key, holding one resource on host.
func startHubSession(t *testing.T, bin, hub, creds, host string) *sessionProc {
	t.Helper()
	return runSession(t, exec.Command(bin, "session", "--server", hub, "--creds", creds, "--pair", "f1", "--name", "ws1",
		"--resource", `\\`+host+`\Floor3`))
}

// waitSessionLine waits until the session agent printed a line holding
// want.
func waitSessionLine(t *testing.T, s *sessionProc, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(s.lines(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the session on the hub printed no line with %s:\n%s", want, s.lines())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
