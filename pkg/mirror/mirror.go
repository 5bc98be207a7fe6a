// Package mirror readies the origin's side of a durable mirror before the
// mirror is made: the audit trail's mirror of the peer's events
// (pkg/audit) and the standby's mirror of the master's license bucket
// (services/license) are fed by a durable push consumer that the origin
// owns, across the leaf link.
//
// Such a consumer remembers how far the node that mirrors has acknowledged.
// A mirror made anew — the node's data directory was lost, or is new —
// starts from that point, not from the origin's first message: the server
// skips what the consumer delivered to the mirror's former self (an empty
// mirror whose consumer is past it jumps ahead, nats-server's stream.go).
// The node's copy of its peer's history, or of the master's licenses,
// never came back. Ready has the consumer start over from the origin's
// first message before the mirror exists, so that the new mirror copies
// everything the origin holds.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes Ready accepts from the origin: nothing to
// start over (the consumer, or its stream, is not made yet; the origin
// makes it delivering from the start).
const (
	errConsumerNotFound = 10014
	errStreamNotFound   = 10059
)

// Ready prepares the making of stream's mirror on this node (js, nc),
// whose origin is the stream of the same name in JetStream domain
// originDomain, fed by the origin's durable consumer. If the mirror exists
// it does nothing: the server goes on from the mirror's last message. If
// not, it has the origin's consumer start over from the first message
// (the consumer reset API, $JS.<domain>.API.CONSUMER.RESET); an error
// means the origin did not answer or refused, and the mirror must not be
// made yet (it would skip the origin's history): try again later.
func Ready(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, stream, originDomain, consumer string) error {
	_, err := js.Stream(ctx, stream)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("mirror %s: %w", stream, err)
	}
	subj := "$JS." + originDomain + ".API.CONSUMER.RESET." + stream + "." + consumer
	req, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{1})
	m, err := nc.RequestWithContext(ctx, subj, req)
	if err != nil {
		return fmt.Errorf("mirror %s: the origin in domain %s does not answer yet: %w", stream, originDomain, err)
	}
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("mirror %s: the origin's answer: %w", stream, err)
	}
	if r.Error != nil && r.Error.ErrCode != errConsumerNotFound && r.Error.ErrCode != errStreamNotFound {
		return fmt.Errorf("mirror %s: the origin refused to start its consumer %s over: %s (%d)", stream, consumer, r.Error.Description, r.Error.ErrCode)
	}
	return nil
}
