package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// globals are the flags every client command takes (SPEC §8). Their
// defaults come from the environment and the client file (clientDefaults).
type globals struct {
	server  string
	creds   string
	tlsCA   string
	json    bool
	timeout time.Duration
	fileErr error   // the client file could not be read
	access  *access // what the server refused (shared with newRoot)
}

// register defines the global flags on fs, with the client defaults and
// timeout as the default --timeout.
func (g *globals) register(fs *pflag.FlagSet, a *app, timeout time.Duration) {
	d := a.client
	g.fileErr, g.access = d.Err, a.access
	fs.StringVar(&g.server, "server", d.Server, "NATS server URL(s), comma separated: a command uses the first that answers, a session given both nodes holds a connection to each ($TANDEM_SERVER)")
	fs.StringVar(&g.creds, "creds", d.Creds, "NATS credentials: a .creds file or an nkey seed file, tandem auth init ($TANDEM_CREDS)")
	fs.StringVar(&g.tlsCA, "tls-ca", d.TLSCA, "PEM CA file the NATS servers' TLS certificates are verified with ($TANDEM_TLS_CA)")
	fs.BoolVar(&g.json, "json", false, "print JSON")
	fs.DurationVar(&g.timeout, "timeout", timeout, "how long to wait for the nodes")
}

// connect connects to the pair's NATS servers, in the order given: a
// command sent "through a node" goes to the node of the first server that
// answers (targetNode).
func (g *globals) connect(name string) (*nats.Conn, error) {
	return g.connectWith(name, func(urls []string, opts []nats.Option) (*nats.Conn, error) {
		return nats.Connect(strings.Join(urls, ","), opts...)
	})
}

// connectAny connects to whichever of the servers is up first, for the
// commands that ask every node and so do not care which (status, check).
func (g *globals) connectAny(name string) (*nats.Conn, error) {
	return g.connectWith(name, connectFirst)
}

func (g *globals) connectWith(name string, connect func([]string, []nats.Option) (*nats.Conn, error)) (*nats.Conn, error) {
	opts, err := g.authOptions(config.RoleAdmin)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name("tandem "+name), nats.Timeout(g.timeout), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	urls, err := session.ServerURLs(g.server)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	nc, err := connect(urls, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", g.server, err)
	}
	return nc, nil
}

// connectFirst connects to every URL at once, each connection knowing
// the others in order after its own for reconnects, and keeps the first
// that is up: a frozen server (it accepts the TCP connection and never
// says hello) no longer costs a whole connect timeout before the next URL
// is tried. (`tandem status` with the first of two servers frozen took
// 2.2 s at --timeout 1s.)
func connectFirst(urls []string, opts []nats.Option) (*nats.Conn, error) {
	if len(urls) <= 1 {
		return nats.Connect(strings.Join(urls, ","), opts...)
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	results := make(chan result, len(urls))
	for i := range urls {
		order := append(slices.Clone(urls[i:]), urls[:i]...)
		go func() {
			nc, err := nats.Connect(strings.Join(order, ","), opts...)
			results <- result{nc, err}
		}()
	}
	var first error
	for n := 1; n <= len(urls); n++ {
		r := <-results
		if r.err != nil {
			first = cmp.Or(first, r.err)
			continue
		}
		go func() { // the connections still coming are not needed
			for range len(urls) - n {
				if late := <-results; late.err == nil {
					late.nc.Close()
				}
			}
		}()
		return r.nc, nil
	}
	return nil, first
}

// authOptions are the options of --creds and --tls-ca, and the inbox prefix
// of role (its user may read only its own replies, natsnode.InboxPrefix).
func (g *globals) authOptions(role string) ([]nats.Option, error) {
	if g.fileErr != nil {
		return nil, g.fileErr
	}
	opts := []nats.Option{nats.CustomInboxPrefix(natsnode.InboxPrefix(role))}
	if g.access != nil {
		g.access.use(g.creds, role)
		opts = append(opts, nats.ErrorHandler(g.access.asyncError))
	}
	if g.creds != "" {
		opt, err := natsnode.CredsOption(g.creds)
		if err != nil {
			return nil, fmt.Errorf("--creds: %w", err)
		}
		opts = append(opts, opt)
	}
	if g.tlsCA != "" {
		opt, err := natsnode.TLSOption(g.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		opts = append(opts, opt)
	}
	return opts, nil
}

// pairFlags are the flags of a command addressed to a pair.
type pairFlags struct {
	globals
	pair string
}

func (p *pairFlags) register(fs *pflag.FlagSet, a *app, timeout time.Duration) {
	p.globals.register(fs, a, timeout)
	fs.StringVar(&p.pair, "pair", a.client.Pair, "the pair ($TANDEM_PAIR)")
}

// dial checks --pair and connects: the opening of every pair command.
func (p *pairFlags) dial(name string) (*nats.Conn, error) {
	if err := p.requirePair(); err != nil {
		return nil, err
	}
	return p.connect(name)
}

// dialAny is dial for a command that asks every node (connectAny).
func (p *pairFlags) dialAny(name string) (*nats.Conn, error) {
	if err := p.requirePair(); err != nil {
		return nil, err
	}
	return p.connectAny(name)
}

// open connects and asks every node of the pair for its status. The caller
// closes the connection.
func (p *pairFlags) open(ctx context.Context, name string) (*nats.Conn, []api.StatusReply, error) {
	nc, err := p.dial(name)
	if err != nil {
		return nil, nil, err
	}
	// As tandem status asks: a dead node costs no waiting.
	_, replies, err := askPair(ctx, nc, p.pair, p.timeout)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, replies, nil
}

// requirePair checks --pair; a client file that could not be read comes
// first, since the pair may be what it failed to give.
func (p *pairFlags) requirePair() error {
	if p.fileErr != nil {
		return p.fileErr
	}
	if p.pair == "" {
		return errors.New("--pair is required")
	}
	return subject.CheckName("pair", p.pair)
}

// gatherReplies sends req to subj, answered by every node of a pair, and
// decodes the replies that come within wait. Refusals are returned only
// when no node answered otherwise; who names the answering service in the
// error when none answered at all.
func gatherReplies[T any](ctx context.Context, nc *nats.Conn, subj string, req any, wait time.Duration, who string) ([]T, error) {
	raw, err := reply.Gather(ctx, nc, subj, req, 2, wait)
	if err != nil {
		return nil, err
	}
	var out []T
	var errs []error
	for _, b := range raw {
		var r T
		if err := reply.Decode(b, &r); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, unanswered(nc, who)
	}
	return out, nil
}

// unanswered is the error of a request no node answered (who: "node of
// pair …"), with the connection's last permission violation when there is
// one: the server drops a request these credentials may not send (a fleet
// reader's admin verb through the hub) without telling the requester.
func unanswered(nc *nats.Conn, who string) error {
	msg := fmt.Sprintf("no %s answers through %s", who, nc.ConnectedUrlRedacted())
	if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		msg += " — these credentials may not send it (" + err.Error() + ")"
	}
	return &reply.Error{Code: reply.CodeUnavailable, Message: msg}
}

// gatherStatus asks every node of the pair for its status.
func gatherStatus(ctx context.Context, nc *nats.Conn, pair string, wait time.Duration) ([]api.StatusReply, error) {
	return gatherReplies[api.StatusReply](ctx, nc, subject.Admin(pair, subject.PairScope, api.VerbStatus),
		api.StatusRequest{Request: api.Request{V: api.Version, Pair: pair}}, wait, fmt.Sprintf("node of pair %q", pair))
}

// openTarget opens the pair as open does and names the node a command
// that goes through a node is sent to (targetNode). The caller closes nc.
func (p *pairFlags) openTarget(ctx context.Context, name string) (nc *nats.Conn, replies []api.StatusReply, node string, err error) {
	if nc, replies, err = p.open(ctx, name); err != nil {
		return nil, nil, "", err
	}
	if node, err = targetNode(nc, replies); err != nil {
		nc.Close()
		return nil, nil, "", err
	}
	return nc, replies, node, nil
}

// targetNode is the node a command that goes "through a node" (F8, L2) is
// sent to: the node whose NATS server the client is connected to; or, when
// the client is connected to none of the pair's servers (a fleet hub, which
// relays the pair's admin requests, SPEC §11), the master if it answered,
// else a node that did, which then applies its own rules (the standby
// refuses what only the master accepts, and names the master).
func targetNode(nc *nats.Conn, replies []api.StatusReply) (string, error) {
	server := nc.ConnectedServerName()
	for _, r := range replies {
		if r.Self.Server == server {
			return r.Self.Node, nil
		}
	}
	for _, r := range replies {
		if r.Self.Role == string(config.Master) {
			return r.Self.Node, nil
		}
	}
	if len(replies) > 0 {
		return replies[0].Self.Node, nil
	}
	return "", fmt.Errorf("no node of the pair answers through %s (%s)", server, nc.ConnectedUrlRedacted())
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
