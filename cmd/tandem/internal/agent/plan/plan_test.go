package plan

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestScripts runs every testdata/*.txt script. A script is a list of
// commands; each `plan` and `apply` is followed by `----` and the expected
// output, ended by a blank line (regenerate with -rewrite, review the diff):
//
//	conn ID ADDRESS [default]          the session holds a connection
//	notify epoch=N active=X failed=Y [host=OLD>NEW] [rename=OLD>NEW]… [missing=ADDR]…
//	plan                                the plan for the last notification
//	apply                               carry the last plan out (the connections
//	                                    move, the applied epoch becomes its epoch)
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

type script struct {
	conns   []Connection
	n       api.Notification
	last    Plan
	applied uint64
}

func runScript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s script
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		got, produces, err := s.do(fields)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		if !produces {
			continue
		}
		var want strings.Builder
		if sc.Scan() && sc.Text() != "----" {
			t.Fatalf("%s: %q: want ---- after it", path, line)
		}
		for sc.Scan() && sc.Text() != "" {
			want.WriteString(sc.Text() + "\n")
		}
		out.WriteString("----\n" + got + "\n")
		if !*rewrite && got != want.String() {
			t.Errorf("%s: %s\ngot:\n%swant:\n%s", path, line, got, want.String())
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *script) do(f []string) (string, bool, error) {
	switch f[0] {
	case "conn":
		if len(f) < 3 {
			return "", false, fmt.Errorf("conn ID ADDRESS [default]")
		}
		s.conns = append(s.conns, Connection{ID: f[1], Address: f[2], Default: len(f) > 3 && f[3] == "default"})
		return "", false, nil
	case "notify":
		n, err := parseNotify(f[1:])
		s.n = n
		return "", false, err
	case "plan":
		s.last = Make(s.conns, s.n, s.applied)
		return render(s.last), true, nil
	case "apply":
		if !s.last.Stale {
			for _, c := range s.last.Changes {
				for i := range s.conns {
					if s.conns[i].ID == c.ID {
						s.conns[i].Address = c.To
					}
				}
			}
			s.applied = s.last.Epoch
		}
		var b strings.Builder
		for _, c := range s.conns {
			fmt.Fprintf(&b, "%s %s%s\n", c.ID, c.Address, map[bool]string{true: " default"}[c.Default])
		}
		fmt.Fprintf(&b, "applied %d\n", s.applied)
		return b.String(), true, nil
	}
	return "", false, fmt.Errorf("unknown command %q", f[0])
}

func parseNotify(args []string) (api.Notification, error) {
	n := api.Notification{V: api.NotificationVersion, Pair: "p", Hosts: map[string]string{}, Renames: map[string]string{}, Source: api.SourceDatabase, Reason: "test"}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return n, fmt.Errorf("argument %q: want key=value", a)
		}
		from, to, _ := strings.Cut(v, ">")
		switch k {
		case "epoch":
			e, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return n, err
			}
			n.Epoch = e
		case "active":
			n.Active = v
		case "failed":
			n.Failed = v
		case "host":
			n.Hosts[from] = to
		case "rename":
			n.Renames[from] = to
		case "missing":
			n.Missing = append(n.Missing, v)
		default:
			return n, fmt.Errorf("unknown key %q", k)
		}
	}
	return n, n.Validate()
}

func render(p Plan) string {
	var b strings.Builder
	if p.Stale {
		fmt.Fprintf(&b, "epoch %d: stale, nothing changes\n", p.Epoch)
		return b.String()
	}
	fmt.Fprintf(&b, "epoch %d → %s: %d changes, %d skipped\n", p.Epoch, p.Active, len(p.Changes), len(p.Skipped))
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "change %s %s → %s%s%s\n", c.ID, c.From, c.To,
			map[bool]string{true: " default"}[c.Default], map[bool]string{true: " (already connected)"}[c.Exists])
	}
	for _, k := range p.Skipped {
		fmt.Fprintf(&b, "skip %s %s: %s\n", k.ID, k.Address, k.Reason)
	}
	return b.String()
}
