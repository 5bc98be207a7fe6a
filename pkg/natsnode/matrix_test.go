package natsnode

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// matrixRow is one row of the documented permission matrix: a publish
// subject (with <pair>, <own>, <peer>, <peer-domain>) and whether each role
// may publish it.
type matrixRow struct {
	subj    string
	allowed map[string]bool
}

// readMatrix parses the table between the permission-matrix markers of
// deploy/production/README.md.
func readMatrix(t *testing.T) []matrixRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "production", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- permission-matrix -->")
	table, _, ok2 := strings.Cut(rest, "<!-- /permission-matrix -->")
	if !ok || !ok2 {
		t.Fatal("no permission matrix in deploy/production/README.md")
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	cells := func(l string) []string {
		parts := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	roles := cells(lines[0])[1:]
	subjRE := regexp.MustCompile("^`([^`]+)`")
	var rows []matrixRow
	for _, l := range lines[2:] {
		c := cells(l)
		m := subjRE.FindStringSubmatch(c[0])
		if m == nil || len(c) != len(roles)+1 {
			t.Fatalf("matrix row %q: want a subject in backticks and %d roles", l, len(roles))
		}
		r := matrixRow{subj: m[1], allowed: map[string]bool{}}
		for i, role := range roles {
			if c[i+1] != "yes" && c[i+1] != "no" {
				t.Fatalf("matrix row %q: %q for %s", l, c[i+1], role)
			}
			r.allowed[role] = c[i+1] == "yes"
		}
		rows = append(rows, r)
	}
	if len(roles) != len(config.AuthRoles)-1 {
		t.Fatalf("matrix roles %v: want every role but leaf", roles)
	}
	return rows
}

// TestPermissionMatrix signs in as every role, with its real credentials, to
// both nodes of a secure pair and publishes every subject of the documented
// matrix: the server refuses exactly those the table says no to.
func TestPermissionMatrix(t *testing.T) {
	rows := readMatrix(t)
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	waitFor(t, 10*time.Second, "secure link up", func() bool { return p.a.Linked() && p.b.Linked() })
	for _, node := range []struct {
		own, peer string
		srv       *Server
	}{{"a", "b", p.a}, {"b", "a", p.b}} {
		expand := strings.NewReplacer("<pair>", "t", "<own>", node.own, "<peer>", node.peer,
			"<peer-domain>", subject.ServerName("t", node.peer))
		for _, role := range config.AuthRoles {
			if role == config.RoleLeaf {
				continue
			}
			t.Run(node.own+"/"+role, func(t *testing.T) {
				denied := publishAll(t, p, node.srv, role, rows, expand)
				for _, r := range rows {
					subj := expand.Replace(r.subj)
					if got := !denied[subj]; got != r.allowed[role] {
						t.Errorf("%s on %s publishes %s: allowed %v, the table says %v", role, node.own, subj, got, r.allowed[role])
					}
				}
			})
		}
	}
}

// publishAll publishes every row's subject as role on srv and returns the
// subjects the server refused (its permission violations arrive before the
// PONG of the flush; their handler runs a moment later).
func publishAll(t *testing.T, p securePair, srv *Server, role string, rows []matrixRow, expand *strings.Replacer) map[string]bool {
	t.Helper()
	opts, err := ClientOptions(p.cfg, role)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2*len(rows))
	opts = append(opts, nats.Name(role), nats.NoReconnect(), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	defer nc.Close()
	for _, r := range rows {
		if err := nc.Publish(expand.Replace(r.subj), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// A last round trip: the handler of every -ERR before it has run once
	// a sentinel violation (a subject nobody may publish) comes through.
	sentinel := "$SYS.matrix.sentinel"
	if err := nc.Publish(sentinel, nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	denied := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("%s: %v", role, err)
			}
			if strings.Contains(err.Error(), sentinel) {
				return denied
			}
			for _, r := range rows {
				if s := expand.Replace(r.subj); strings.Contains(err.Error(), `"`+s+`"`) {
					denied[s] = true
				}
			}
		case <-timeout:
			t.Fatalf("%s: no violation for the sentinel %s", role, sentinel)
		}
	}
}
