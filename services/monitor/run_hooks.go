package monitor

import (
	"context"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
	"github.com/tandem-ha/tandem/services/monitor/internal/hooks"
)

// runHooks runs queued hooks one at a time, in order, and reports each
// outcome as a tandem.hook.finished event (F11, F13). A transition with no
// command configured runs nothing and reports nothing.
func (s *Service) runHooks(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.hooks:
			s.runHook(ctx, j.hook)
			// A yielding node sends Take only now (F8); a hook killed
			// at its time limit is done too, and reported as failed.
			select {
			case s.inputs <- input{in: failover.HookDone(j.hook), at: s.clk.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (s *Service) runHook(ctx context.Context, h failover.Hook) {
	cmd, name := s.cfg.Hooks.OnPassive, "on_passive"
	if h.State == failover.Active {
		cmd, name = s.cfg.Hooks.OnActive, "on_active"
	}
	if cmd == "" {
		return
	}
	r := hooks.Run(ctx, hooks.Spec{Command: cmd, Pair: s.cfg.Pair, Node: s.cfg.Node, Role: string(s.cfg.Role),
		State: string(h.State), Epoch: h.Epoch, Timeout: s.cfg.Hooks.Timeout})
	s.met.hookSeconds.WithLabelValues(name).Observe(r.Duration.Seconds())
	data := event.HookResult{Hook: name, Command: cmd, State: string(h.State), ExitCode: r.ExitCode,
		DurationMS: r.Duration.Milliseconds(), Output: r.Output, OK: r.Err == nil}
	l := s.log.Info()
	if r.Err != nil {
		data.Error = r.Err.Error()
		l = s.log.Warn().Err(r.Err)
	}
	l.Str("hook", name).Uint64("epoch", h.Epoch).Int("exit_code", r.ExitCode).Dur("took", r.Duration).Msg("hook finished")
	env, err := event.New(s.cfg.Pair, s.cfg.Node, "monitor", event.HookFinished, h.Epoch, s.clk.Now(), data)
	if err == nil {
		s.events.Emit(env)
	}
}
