package pairtest

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// ServeReplConfig answers node's repl.config requests through nc with pc,
// as node's replicator does when its database holds pc (the request is
// decoded and checked the same way; a bad one gets an error reply). It lets
// the notifier's tests run without the replicator. The returned stop ends
// it, as the replicator stopping would; t's cleanup also does.
func ServeReplConfig(t testing.TB, nc *nats.Conn, pair, node string, pc api.PairConfig) (stop func()) {
	t.Helper()
	sub, err := nc.Subscribe(subject.ReplConfig(pair, node), func(m *nats.Msg) {
		_ = m.Respond(answerConfig(m.Data, pair, node, pc))
	})
	if err != nil {
		t.Fatalf("serve repl.config of %s: %v", node, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("serve repl.config of %s: %v", node, err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = sub.Unsubscribe() }) }
	t.Cleanup(stop)
	return stop
}

// answerConfig is the reply to a repl.config request of node.
func answerConfig(data []byte, pair, node string, pc api.PairConfig) []byte {
	var req api.ConfigRequest
	if err := api.Decode(data, pair, &req); err != nil {
		return reply.Fail(err)
	}
	if req.Node != node {
		return reply.Fail(reply.Errorf(reply.CodeBadRequest, "config request names another node than its subject"))
	}
	return reply.OK(api.ConfigReply{Config: pc, ReadAt: time.Now()})
}
