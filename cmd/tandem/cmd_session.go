package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newSessionCmd)
}

// sessionOptions are the flags of tandem session.
type sessionOptions struct {
	pairFlags
	name       string
	resources  []string
	def        string
	driver     string
	exec       string
	cupsServer string
}

func newSessionCmd(a *app) *cobra.Command {
	var o sessionOptions
	c := &cobra.Command{
		Use:   "session --pair P --name S --resource ADDR...",
		Short: "run one session: follow the pair's notifications, switch its resources, print each switch as a JSON line",
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdSession(c.Context(), o, c.OutOrStdout())
		},
	}
	o.register(c.Flags(), a, 3*time.Second)
	c.Flags().StringVar(&o.name, "name", "", "the session's name (1–64 of A-Z a-z 0-9 _ -)")
	c.Flags().StringArrayVar(&o.resources, "resource", nil, "a resource address the session is connected to (repeatable), e.g. \\\\print-a\\Floor3")
	c.Flags().StringVar(&o.def, "default", "", "the address of the default resource (default: the first)")
	c.Flags().StringVar(&o.driver, "driver", agent.DriverNone, "what the session switches: none (its --resource addresses, in memory), cups (the local CUPS queues), windows (the user's printer connections), exec (runs --exec per --resource)")
	c.Flags().StringVar(&o.exec, "exec", "", "with --driver exec: the command run per switched resource (TANDEM_RESOURCE, TANDEM_FROM, TANDEM_TO, TANDEM_EPOCH in its environment)")
	c.Flags().StringVar(&o.cupsServer, "cups-server", os.Getenv("CUPS_SERVER"), "with --driver cups: the CUPS server (host[:port] or socket path; default $CUPS_SERVER, else CUPS's default)")
	return c
}

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

func cmdSession(ctx context.Context, o sessionOptions, out io.Writer) error {
	if err := o.requirePair(); err != nil {
		return err
	}
	if !subject.ValidSession(o.name) {
		return fmt.Errorf("--name %q: want 1–64 of A-Z a-z 0-9 _ -", o.name)
	}
	if o.driver != agent.DriverNone {
		return runAgent(ctx, o, agent.Options{Driver: o.driver, Resources: o.resources, Default: o.def, Exec: o.exec, CUPSServer: o.cupsServer}, out)
	}
	if o.exec != "" {
		return errors.New("--exec is for --driver exec")
	}
	if len(o.resources) == 0 {
		return errors.New("at least one --resource is required")
	}
	conns := make([]session.Connection, len(o.resources))
	for i, r := range o.resources {
		conns[i] = session.Connection{Address: r, Default: r == o.def || (o.def == "" && i == 0)}
	}
	c, err := o.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex // guards out
	enc := json.NewEncoder(out)
	_, err = c.Add(o.name, conns, func(ch session.Change) {
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

// sessionStatusLines prints the sessions part of `tandem status`: what each
// node's notifier knows; a node whose notifier did not answer has a row that
// says so.
func sessionStatusLines(out io.Writer, ps api.PairStatus) {
	if !anyNode(ps, func(n api.NodeStatus) bool { return n.Sessions != nil }) {
		return
	}
	fmt.Fprintln(out, "\nsessions")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tEPOCH\tKNOWN\tACKNOWLEDGED\tNOTIFIED\tALL ACKED\tSOURCE\tPUSH CLIENTS")
	for _, n := range ps.Nodes {
		s := n.Sessions
		if s == nil {
			fmt.Fprintf(tw, "%s\t%s\n", nodeName(n), noAnswer(n))
			continue
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

// dial connects the session to the pair's servers as the session role,
// reading replies in its own inbox (under the session role's): a
// per-client key reads only its own replies.
func (o sessionOptions) dial() (*session.Client, error) {
	opts, err := o.authOptions(config.RoleSession)
	if err != nil {
		return nil, err
	}
	urls, err := session.ServerURLs(o.server)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	opts = append(opts, nats.CustomInboxPrefix(natsnode.SessionInboxPrefix(o.name)), nats.Timeout(o.timeout))
	return session.Dial(urls, o.pair, opts...)
}

// runAgent runs a session agent that switches the system's connections
// (package agent).
func runAgent(ctx context.Context, o sessionOptions, ao agent.Options, out io.Writer) error {
	d, err := agent.NewDriver(ao)
	if err != nil {
		return err
	}
	c, err := o.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	log := zerolog.New(os.Stderr).With().Timestamp().Str("pair", o.pair).Str("session", o.name).Str("driver", ao.Driver).Logger()
	return agent.Follow(ctx, c, agent.Config{Pair: o.pair, Session: o.name, Driver: d, Out: out, Log: log})
}
