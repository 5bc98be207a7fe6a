package replicator_test

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func replyGather(nc *nats.Conn, verb string, req any) ([][]byte, error) {
	return reply.Gather(context.Background(), nc, subject.ReplAdmin(pairName, verb), req, 2, 5*time.Second)
}

func decodeReply(b []byte, v any) error { return reply.Decode(b, v) }
