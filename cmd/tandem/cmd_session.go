package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commands["session"] = command{"run one session: follow the pair's notifications, switch its resources, print each switch as a JSON line", cmdSession}
	statusExtras = append(statusExtras, sessionStatusExtra)
	statusLines = append(statusLines, sessionStatusLines)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// switchLine is one printed switch (SPEC §8).
type switchLine struct {
	Session   string       `json:"session"`
	Epoch     uint64       `json:"epoch"`
	From      string       `json:"from"`
	To        string       `json:"to"`
	Resources []api.Switch `json:"resources"`
	MS        int64        `json:"ms"`
	Source    string       `json:"source"`
}

func cmdSession(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	var resources listFlag
	fs := flag.NewFlagSet("session", flag.ContinueOnError)
	p.register(fs)
	name := fs.String("name", "", "the session's name (1–64 of A-Z a-z 0-9 _ -)")
	fs.Var(&resources, "resource", "a resource address the session is connected to (repeatable), e.g. \\\\print-a\\Floor3")
	def := fs.String("default", "", "the address of the default resource (default: the first)")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if err := requirePair(p.pair); err != nil {
		return err
	}
	if !subject.ValidSession(*name) {
		return fmt.Errorf("--name %q: want 1–64 of A-Z a-z 0-9 _ -", *name)
	}
	if len(resources) == 0 {
		return errors.New("at least one --resource is required")
	}
	conns := make([]session.Connection, len(resources))
	for i, r := range resources {
		conns[i] = session.Connection{Address: r, Default: r == *def || (*def == "" && i == 0)}
	}
	opts, err := p.authOptions(config.RoleSession)
	if err != nil {
		return err
	}
	// Its own inbox (under the session role's): a per-client key reads
	// only its own replies.
	opts = append(opts, nats.CustomInboxPrefix(natsnode.SessionInboxPrefix(*name)))
	c, err := session.Dial(strings.Split(p.server, ","), p.pair, append(opts, nats.Timeout(p.timeout))...)
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex // guards out
	enc := json.NewEncoder(out)
	_, err = c.Add(*name, conns, func(ch session.Change) {
		if len(ch.Switched) == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(switchLine{Session: ch.Session, Epoch: ch.Epoch, From: ch.From, To: ch.To,
			Resources: ch.Switched, MS: ch.Took.Milliseconds(), Source: ch.Source})
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// sessionStatusExtra adds each notifier's session counts to the status.
func sessionStatusExtra(ctx context.Context, nc *nats.Conn, ps *api.PairStatus) {
	replies, err := gatherReplies[api.NotifierStatusReply](ctx, nc, subject.NotifierStatus(ps.Pair),
		api.NotifierStatusRequest{Request: api.Request{V: api.Version, Pair: ps.Pair}}, time.Second, "notifier")
	if err != nil {
		return
	}
	for _, r := range replies {
		attach(ps, r.Status.Node, func(n *api.NodeStatus) { n.Sessions = r.Status })
	}
}

func sessionStatusLines(out io.Writer, ps api.PairStatus) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := false
	for _, n := range ps.Nodes {
		s, ok := n.Sessions.(api.SessionStatus)
		if !ok {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "SESSIONS\tEPOCH\tKNOWN\tACKNOWLEDGED\tNOTIFIED\tALL ACKED\tSOURCE\tPUSH CLIENTS")
			header = true
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", n.Node, s.Epoch, s.Known, s.Acknowledged,
			msOrDash(s.NotifiedMS), msOrDash(s.AllAckedMS), orDash(s.Source), s.PushClients)
	}
	tw.Flush()
}

func msOrDash(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}
