// Package agent is the session agent behind `tandem session --driver`
// (SPEC N8): it follows the pair's notifications and really moves the
// operating system's connections — local CUPS queues (CUPS), a Windows
// user's printer connections (Windows), or anything a command does (Exec) —
// and acknowledges exactly what it changed and what it could not, with the
// reason.
//
// What to change is decided by package plan (pure); a Driver is the small
// operating-system side: List the connections as they are, Apply one change
// entirely or not at all. Every pass reads the connections afresh, so the
// agent converges on the newest active node whatever it missed.
//
// # Concurrency
//
// Notify may be called from any goroutine (the session client's); it keeps
// only the newest notification (guarded by mu) and wakes Run. Run owns
// everything else: one goroutine carries out one notification at a time.
// Between two changes it looks for a newer notification; if there is one,
// it stops, acknowledges what it did for the older epoch (the rest as
// superseded) and plans the newer one from the connections as they are then.
// A change in progress is never interrupted, not even by the end of ctx
// (each runs under its own time limit), so nothing is left half-done.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
	"github.com/tandem-ha/tandem/pkg/api"
)

// Step is one change of a plan, with the notification it serves.
type Step struct {
	plan.Change
	Epoch  uint64
	Active string // the node now active
	Failed string // the node left, "" when unknown
}

// Driver is the operating-system side of an agent.
type Driver interface {
	// List returns the session's connections as the system holds them now.
	List(ctx context.Context) ([]plan.Connection, error)
	// Apply carries one change out entirely or not at all, keeping every
	// setting of the connection; an error says why it did not.
	Apply(ctx context.Context, s Step) error
}

// Acker publishes acknowledgements (a *session.Client).
type Acker interface {
	PublishAck(api.SessionAck) error
}

// Config configures an Agent.
type Config struct {
	Pair, Session string
	Driver        Driver
	Acks          Acker
	// Out receives one JSON line (Line) per pass that switched or skipped
	// something; nil for none.
	Out io.Writer
	Log zerolog.Logger
	// Retry is the wait before a failed List is tried again (default 1 s).
	Retry time.Duration
	// StepTimeout bounds one Apply (default 2 min).
	StepTimeout time.Duration
	// Recheck spaces the passes for re-announcements of the epoch already
	// carried out without a skip (N7 repeats it every few seconds): within
	// Recheck of the last clean pass such a re-announcement is only
	// acknowledged, without reading the connections. 0 reads them every
	// time (cheap for CUPS; a PowerShell start per pass on Windows).
	Recheck time.Duration
	// Now is the clock for the time taken (default time.Now).
	Now func() time.Time
}

// Line is what the agent prints per pass: the fields of `tandem session`'s
// JSON lines, plus what it skipped.
type Line struct {
	Session   string       `json:"session"`
	Epoch     uint64       `json:"epoch"`
	From      string       `json:"from"`
	To        string       `json:"to"`
	Resources []api.Switch `json:"resources"`
	Skipped   []api.Skip   `json:"skipped,omitempty"`
	MS        int64        `json:"ms"`
	Source    string       `json:"source"`
}

// Agent follows notifications and switches connections through a Driver.
type Agent struct {
	cfg  Config
	kick chan struct{} // size 1: one pending wake-up is enough

	mu      sync.Mutex // guards pending
	pending *api.Notification

	applied   uint64    // owned by Run
	cleanPass time.Time // owned by Run: the last pass of applied without a skip; zero if none
	outMu     sync.Mutex
}

// New returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Driver == nil || cfg.Acks == nil {
		return nil, errors.New("agent: a driver and an acknowledgement publisher are required")
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Agent{cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// Notify hands the agent a notification; it keeps the newest (an older one
// than pending is dropped) and never blocks.
func (a *Agent) Notify(n api.Notification) {
	a.mu.Lock()
	if a.pending == nil || n.Epoch >= a.pending.Epoch {
		a.pending = &n
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// take returns the pending notification and clears it.
func (a *Agent) take() (api.Notification, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		return api.Notification{}, false
	}
	n := *a.pending
	a.pending = nil
	return n, true
}

// newer returns the epoch of a pending notification newer than epoch.
func (a *Agent) newer(epoch uint64) (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending != nil && a.pending.Epoch > epoch {
		return a.pending.Epoch, true
	}
	return 0, false
}

// requeue puts n back unless something at least as new is pending.
func (a *Agent) requeue(n api.Notification) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil || a.pending.Epoch < n.Epoch {
		a.pending = &n
	}
}

// Applied is the epoch of the last notification the agent carried out.
// Only for use after Run returned, or from Run's goroutine.
func (a *Agent) Applied() uint64 { return a.applied }

// Run says hello, then carries out notifications until ctx ends, and says
// bye.
func (a *Agent) Run(ctx context.Context) error {
	a.ack(api.AckHello, 0, nil, nil, 0)
	defer func() { a.ack(api.AckBye, a.applied, nil, nil, 0) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		}
		for {
			n, ok := a.take()
			if !ok {
				break
			}
			if err := a.pass(ctx, n); err != nil {
				a.cfg.Log.Warn().Err(err).Uint64("epoch", n.Epoch).Msg("session agent: pass failed, will retry")
				a.requeue(n)
				t := time.NewTimer(a.cfg.Retry)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// pass carries out n; an error (the connections could not be read) means
// nothing was changed and n should be tried again.
func (a *Agent) pass(ctx context.Context, n api.Notification) error {
	if n.Epoch < a.applied {
		return nil
	}
	if n.Epoch == a.applied && !a.cleanPass.IsZero() && a.cfg.Now().Sub(a.cleanPass) < a.cfg.Recheck {
		a.ack(api.AckHello, n.Epoch, nil, nil, 0)
		return nil
	}
	conns, err := a.cfg.Driver.List(ctx)
	if err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	p := plan.Make(conns, n, a.applied)
	var done []api.Switch
	skipped := make([]api.Skip, 0, len(p.Skipped))
	for _, k := range p.Skipped {
		skipped = append(skipped, api.Skip{Address: k.Address, Reason: k.Reason})
	}
	for i, c := range p.Changes {
		if e, ok := a.newer(n.Epoch); ok || ctx.Err() != nil {
			reason := fmt.Sprintf("superseded by epoch %d", e)
			if !ok {
				reason = "agent stopped"
			}
			for _, r := range p.Changes[i:] {
				skipped = append(skipped, api.Skip{Address: r.From, Reason: reason})
			}
			break
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.StepTimeout)
		err := a.cfg.Driver.Apply(sctx, Step{Change: c, Epoch: n.Epoch, Active: n.Active, Failed: n.Failed})
		cancel()
		if err != nil {
			a.cfg.Log.Warn().Err(err).Uint64("epoch", n.Epoch).Str("resource", c.ID).Msg("session agent: change refused")
			skipped = append(skipped, api.Skip{Address: c.From, Reason: reason(err)})
			continue
		}
		a.cfg.Log.Info().Uint64("epoch", n.Epoch).Str("resource", c.ID).Str("from", c.From).Str("to", c.To).Msg("session agent: switched")
		done = append(done, api.Switch{From: c.From, To: c.To})
	}
	newEpoch := n.Epoch > a.applied
	a.applied, a.cleanPass = n.Epoch, time.Time{}
	if len(skipped) == 0 {
		a.cleanPass = a.cfg.Now()
	}
	if !newEpoch && len(done) == 0 && len(skipped) == 0 {
		a.ack(api.AckHello, n.Epoch, nil, nil, 0)
		return nil
	}
	took := a.cfg.Now().Sub(n.Time)
	if took < 0 {
		took = 0
	}
	if len(done) > 0 || len(skipped) > 0 {
		a.print(Line{Session: a.cfg.Session, Epoch: n.Epoch, From: n.Failed, To: n.Active,
			Resources: orEmpty(done), Skipped: skipped, MS: took.Milliseconds(), Source: n.Source})
	}
	a.ack(api.AckSwitched, n.Epoch, done, skipped, took.Milliseconds())
	return nil
}

func orEmpty(s []api.Switch) []api.Switch {
	if s == nil {
		return []api.Switch{}
	}
	return s
}

// reason is err as one line that an acknowledgement carries (no control
// characters, at most 200 bytes).
func reason(err error) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, err.Error())
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if s == "" {
		s = "refused"
	}
	return s
}

// ack publishes an acknowledgement; what does not fit one is cut (the
// printed line keeps everything).
func (a *Agent) ack(kind string, epoch uint64, done []api.Switch, skipped []api.Skip, ms int64) {
	ack := api.SessionAck{V: api.NotificationVersion, Pair: a.cfg.Pair, Session: a.cfg.Session, Kind: kind, Epoch: epoch,
		Switched: done, Skipped: skipped, MS: ms}
	if len(ack.Switched) > api.MaxAckSwitches {
		ack.Switched = ack.Switched[:api.MaxAckSwitches]
	}
	if len(ack.Skipped) > api.MaxAckSwitches {
		ack.Skipped = ack.Skipped[:api.MaxAckSwitches]
	}
	for len(api.AppendAck(nil, ack)) > api.MaxAck && len(ack.Skipped)+len(ack.Switched) > 0 {
		if len(ack.Skipped) > 0 {
			ack.Skipped = ack.Skipped[:len(ack.Skipped)-1]
		} else {
			ack.Switched = ack.Switched[:len(ack.Switched)-1]
		}
	}
	if err := a.cfg.Acks.PublishAck(ack); err != nil {
		a.cfg.Log.Warn().Err(err).Uint64("epoch", epoch).Msg("session agent: acknowledgement not sent")
	}
}

func (a *Agent) print(l Line) {
	if a.cfg.Out == nil {
		return
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	_ = json.NewEncoder(a.cfg.Out).Encode(l)
}
