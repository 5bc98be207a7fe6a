package monitor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
	"github.com/tandem-ha/tandem/services/monitor/witness"
)

// connectWitness connects to the pair's witness (F14), when one is
// configured. The connection retries for ever in the background: a witness
// that is down at start is reported by the machine (its requests fail), not
// fatal.
func (s *Service) connectWitness() error {
	w := s.cfg.Witness
	if w.URL == "" {
		return nil
	}
	wl := &witnessLog{log: s.log, url: w.URL}
	opts := []nats.Option{nats.Name("tandem-monitor-witness-" + s.cfg.Node), nats.MaxReconnects(-1),
		nats.ReconnectWait(s.cfg.Heart.Interval / 2), nats.RetryOnFailedConnect(true),
		nats.CustomInboxPrefix(natsnode.WitnessInboxPrefix(s.cfg.Pair)), // the only replies its user may read
		nats.IgnoreAuthErrorAbort(),                                     // credentials refused: keep trying, the witness may be fixed
		nats.ConnectHandler(wl.connected), nats.ReconnectHandler(wl.connected),
		nats.DisconnectErrHandler(wl.failed), nats.ReconnectErrHandler(wl.failed), nats.ErrorHandler(wl.async)}
	if w.Creds != "" {
		o, err := natsnode.CredsOption(w.Creds)
		if err != nil {
			return fmt.Errorf("monitor: witness.creds: %w", err)
		}
		opts = append(opts, o)
	}
	ca := w.CA
	if ca == "" {
		ca = s.cfg.NATS.TLS.CA
	}
	if ca != "" {
		o, err := natsnode.TLSOption(ca)
		if err != nil {
			return fmt.Errorf("monitor: witness TLS: %w", err)
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(w.URL, opts...)
	if err != nil {
		return fmt.Errorf("monitor: witness %s: %w", w.URL, err)
	}
	s.wnc = nc
	return nil
}

// witnessLog logs the witness connection's changes: each reason it
// failed once (a refused login repeats at every attempt), and each
// (re)connection.
type witnessLog struct {
	log zerolog.Logger
	url string

	mu   sync.Mutex // guards last
	last string     // the last failure logged, "" once connected
}

func (l *witnessLog) connected(*nats.Conn) {
	l.mu.Lock()
	l.last = ""
	l.mu.Unlock()
	l.log.Info().Str("url", l.url).Msg("connected to the witness")
}

func (l *witnessLog) failed(_ *nats.Conn, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil || err.Error() == l.last {
		return
	}
	l.last = err.Error()
	l.log.Warn().Err(err).Str("url", l.url).Msg("the witness connection failed (witness.url, witness.creds, witness.ca)")
}

// async logs an asynchronous error, such as a permission the witness
// refused.
func (l *witnessLog) async(_ *nats.Conn, _ *nats.Subscription, err error) {
	l.log.Warn().Err(err).Str("url", l.url).Msg("witness connection error")
}

func (s *Service) closeWitness() {
	if s.wnc != nil {
		s.wnc.Close()
	}
}

// askWitness carries a lease request to the witness off the loop and steps
// the answer in; no answer within witnessDeadline is Unreachable.
func (s *Service) askWitness(ctx context.Context, q failover.LeaseRequest) {
	r := q.Request
	r.TTLMS = s.cfg.Heart.Timeout.Milliseconds()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rep := failover.LeaseReply{Seq: q.Seq, Unreachable: true}
		if s.wnc != nil && s.wnc.IsConnected() {
			actx, cancel := context.WithTimeout(ctx, s.witnessDeadline())
			wr, err := witness.Ask(actx, s.wnc, s.cfg.Pair, r)
			cancel()
			if err == nil {
				rep = failover.LeaseReply{Seq: q.Seq, Reply: wr}
			} else {
				s.log.Debug().Err(err).Msg("witness request failed")
			}
		}
		select {
		case s.inputs <- input{in: rep, at: s.clk.Now()}:
		case <-ctx.Done():
		}
	}()
}

// witnessDeadline is how long a lease request may take: half a heartbeat
// interval, at least 500 ms (a busy machine answers in tens of
// milliseconds, not one), and at most a third of the lease's term.
func (s *Service) witnessDeadline() time.Duration {
	return min(max(s.cfg.Heart.Interval/2, 500*time.Millisecond), s.cfg.Heart.Timeout/3)
}
