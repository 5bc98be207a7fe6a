package audit

// Guarding the audit streams (SPEC §7 A3). The permissions keep every key
// but the server part's away from the streams' configuration; Drift finds a
// change made anyway (a misconfigured external NATS, an operator with the
// server's rights), and Restore puts the configuration back. Messages lost
// to a shrunk retention are gone: the change is reported as critical.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// Drift compares node's event stream and, when peer is not "", its mirror
// of peer's stream with their configuration: one line per difference,
// none when both are as they must be.
func Drift(ctx context.Context, js jetstream.JetStream, pair, node, peer string, r Retention) ([]string, error) {
	want := OriginConfig(pair, node, r)
	out, err := StreamDrift(ctx, js, want)
	if err != nil || peer == "" {
		return out, err
	}
	more, err := StreamDrift(ctx, js, MirrorConfig(pair, peer, r))
	return append(out, more...), err
}

// StreamDrift compares one audit stream (a node's, a mirror, the fleet
// hub's) with want: one line per difference in what protects it (deny
// delete and purge, retention, subjects, mirror), "deleted" when it is
// gone, none when it is as it must be.
func StreamDrift(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) ([]string, error) {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return []string{want.Name + ": deleted"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	got := st.CachedInfo().Config
	var out []string
	diff := func(what string, g, w any) {
		out = append(out, fmt.Sprintf("%s: %s is %v, want %v", want.Name, what, g, w))
	}
	if got.DenyDelete != want.DenyDelete {
		diff("deny_delete", got.DenyDelete, want.DenyDelete)
	}
	if got.DenyPurge != want.DenyPurge {
		diff("deny_purge", got.DenyPurge, want.DenyPurge)
	}
	if got.MaxAge != want.MaxAge {
		diff("max_age", got.MaxAge, want.MaxAge)
	}
	if got.MaxBytes != want.MaxBytes {
		diff("max_bytes", got.MaxBytes, want.MaxBytes)
	}
	if got.MaxMsgs > 0 {
		diff("max_msgs", got.MaxMsgs, "unlimited")
	}
	if !slices.Equal(got.Subjects, want.Subjects) {
		diff("subjects", got.Subjects, want.Subjects)
	}
	if (got.Mirror == nil) != (want.Mirror == nil) || got.Mirror != nil && got.Mirror.Name != want.Mirror.Name {
		diff("mirror", got.Mirror != nil, want.Mirror != nil)
	}
	return out, nil
}

// Restore makes node's event stream and, when peer is not "", its mirror
// as they must be again.
func Restore(ctx context.Context, js jetstream.JetStream, pair, node, peer string, r Retention) error {
	err := EnsureOrigin(ctx, js, pair, node, r)
	if peer != "" {
		err = errors.Join(err, EnsureMirror(ctx, js, pair, node, peer, r))
	}
	if err != nil {
		return fmt.Errorf("restore the event streams of %s: %w", subject.ServerName(pair, node), err)
	}
	return nil
}
