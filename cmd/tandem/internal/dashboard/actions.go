package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Actions the page offers (the form's verb), each one admin verb of the CLI.
const (
	ActSwitchover     = "switchover"
	ActMaintenanceOn  = "maintenance-on"
	ActMaintenanceOff = "maintenance-off"
	ActReplPause      = "repl-pause"
	ActReplResume     = "repl-resume"
)

// serveAction carries out one action after its confirmation. The answer is
// JSON for the script, or a redirect to the page with the outcome for a
// browser without JavaScript.
func (d *Dashboard) serveAction(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	verb, confirmed, dur := r.PostFormValue("verb"), r.PostFormValue("confirm") == "yes", r.PostFormValue("for")
	var msg string
	var err error
	switch {
	case !d.o.Access.Secured():
		err = reply.Errorf("forbidden", "actions need the dashboard's credentials: set admin.tokens_file or admin.users_file")
	case !confirmed:
		err = reply.Errorf(reply.CodeBadRequest, "%s not confirmed: tick the confirmation", verb)
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		msg, err = d.act(ctx, verb, dur)
		cancel()
	}
	if err != nil {
		msg = err.Error()
		d.log.Info().Str("action", verb).Err(err).Msg("dashboard action refused")
	} else {
		d.log.Info().Str("action", verb).Msg("dashboard action: " + msg)
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write(reply.Fail(err))
			return
		}
		_, _ = w.Write(reply.OK(map[string]any{"message": msg}))
		return
	}
	http.Redirect(w, r, "/?notice="+url.QueryEscape(msg), http.StatusSeeOther)
}

// act sends the admin request of verb to this node, as the CLI does when it
// is connected to this node's server, and says what came of it.
func (d *Dashboard) act(ctx context.Context, verb, dur string) (string, error) {
	p, n := d.o.Pair, d.o.Node
	head := api.Request{V: api.Version, Pair: p}
	switch verb {
	case ActSwitchover:
		err := reply.Request(ctx, d.o.Conn, subject.Admin(p, n, api.VerbSwitchover), api.SwitchoverRequest{Request: head}, nil)
		return fmt.Sprintf("switchover accepted by %s", n), err
	case ActMaintenanceOn, ActMaintenanceOff:
		on := verb == ActMaintenanceOn
		if dur != "" {
			if d, err := time.ParseDuration(dur); err != nil || d <= 0 {
				return "", reply.Errorf(reply.CodeBadRequest, "maintenance duration %q: want a positive Go duration such as 30m", dur)
			}
		}
		var res map[string]any
		err := reply.Request(ctx, d.o.Conn, subject.Admin(p, n, api.VerbMaintenance), api.MaintenanceRequest{Request: head, On: on, For: dur}, &res)
		if on {
			return fmt.Sprintf("maintenance on for %v: no automatic failover until then", res["for"]), err
		}
		return "maintenance off", err
	case ActReplPause, ActReplResume:
		v, what := api.VerbReplPause, "paused"
		if verb == ActReplResume {
			v, what = api.VerbReplResume, "resumed"
		}
		rs, err := askAll[api.ReplReply](ctx, d.src, subject.ReplAdmin(p, v), api.ReplRequest{Request: head})
		if len(rs) == 0 {
			return "", err
		}
		var nodes []string
		for _, r := range rs {
			nodes = append(nodes, r.Status.Node+" "+r.Status.State)
		}
		return fmt.Sprintf("replication %s: %s", what, strings.Join(nodes, ", ")), nil
	}
	return "", reply.Errorf(reply.CodeBadRequest, "unknown action %q", verb)
}
