package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/mirror"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Bucket keys.
const (
	leaseKey  = "lease"
	licPrefix = "lic."
)

// maxLeaseSize bounds a lease record.
const maxLeaseSize = 1 << 10

// lease is the master's proof of life, renewed every lease interval.
type lease struct {
	V      int       `json:"v"`
	Master string    `json:"master"`
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
}

func bucketConfig(pair string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       subject.LicenseBucket(pair),
		Description:  "Tandem licenses of pair " + pair + " and the master's lease",
		History:      1,
		MaxValueSize: lic.MaxArmoredSize,
		Storage:      jetstream.FileStorage,
	}
}

// ensureBucket creates the master's bucket and the consumer that feeds the
// standby's mirror, or the standby's mirror of it.
func (s *Service) ensureBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cfg := bucketConfig(s.cfg.Pair)
	stream := "KV_" + cfg.Bucket
	if s.cfg.Role == config.Master {
		kv, err := s.js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("license: bucket %s: %w", cfg.Bucket, err)
		}
		_, err = s.js.CreateOrUpdatePushConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:        subject.LicenseMirrorConsumer,
			Description:    "feeds the standby's mirror of the license bucket",
			DeliverSubject: subject.LicenseMirrorDeliver(s.cfg.Pair, s.cfg.Node),
			AckPolicy:      jetstream.AckFlowControlPolicy,
			FlowControl:    true,
			IdleHeartbeat:  time.Second, // the server requires exactly 1 s
			MaxAckPending:  1024,
		})
		if err != nil {
			return nil, fmt.Errorf("license: mirror consumer on %s: %w", stream, err)
		}
		return kv, nil
	}
	master := s.masterNode()
	if master == "" {
		return nil, errors.New("license: the standby does not know its master's node name yet")
	}
	// A mirror made anew (this node's data directory was lost) must copy
	// every license, not only the master's writes from now on.
	if err := mirror.Ready(ctx, s.js, s.nc, stream, subject.ServerName(s.cfg.Pair, master), subject.LicenseMirrorConsumer); err != nil {
		return nil, fmt.Errorf("license: %w", err)
	}
	cfg.Mirror = &jetstream.StreamSource{
		Name:   stream,
		Domain: subject.ServerName(s.cfg.Pair, master),
		Consumer: &jetstream.StreamConsumerSource{
			Name:           subject.LicenseMirrorConsumer,
			DeliverSubject: subject.LicenseMirrorDeliver(s.cfg.Pair, master),
		},
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("license: mirror %s of the master's bucket: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// writeLease renews the master's lease. A failure is logged: the next
// interval tries again, and the standby's grace covers far longer gaps.
func (s *Service) writeLease(ctx context.Context) {
	b, _ := json.Marshal(lease{V: 1, Master: s.cfg.Node, ID: nuid.Next(), Time: s.clk.Now().UTC()})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.kv.Put(pctx, leaseKey, b); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("lease not renewed")
	}
}

// onEntry takes one update of the bucket: a license or the lease.
func (s *Service) onEntry(e jetstream.KeyValueEntry) {
	if e == nil { // the end of the initial values
		return
	}
	key := e.Key()
	switch {
	case e.Operation() != jetstream.KeyValuePut:
		if id, ok := strings.CutPrefix(key, licPrefix); ok {
			delete(s.licenses, id)
		}
	case key == leaseKey:
		s.onLease(e.Value())
	case strings.HasPrefix(key, licPrefix):
		s.onLicense(strings.TrimPrefix(key, licPrefix), e.Value())
	default:
		s.reject("license.bucket", key, fmt.Errorf("unknown key %q in the license bucket", key))
	}
}

func (s *Service) onLease(b []byte) {
	if s.cfg.Role == config.Master {
		return
	}
	var l lease
	if err := event.DecodeStrict(b, maxLeaseSize, &l); err != nil || l.V != 1 || l.ID == "" {
		s.reject("license.lease", leaseKey, fmt.Errorf("malformed lease: %v", err))
		return
	}
	// A new lease says the master is reachable: ask it for a proof of
	// contact now. The lease itself proves nothing (it may be a replay).
	s.kickChallenger()
}

// onLicense keeps a license from the bucket if it verifies against this
// node's own key. Its validity in time is the grace decision's business.
func (s *Service) onLicense(id string, b []byte) {
	l, err := lic.Decode(b)
	if err == nil && s.pub == nil {
		err = errors.New("no license.public_key configured: cannot verify")
	}
	if err == nil {
		err = l.Verify(s.pub)
	}
	if err == nil {
		err = l.CheckPair(s.cfg.Pair)
	}
	if err == nil && l.ID != id {
		err = fmt.Errorf("license %s stored under id %s", l.ID, id)
	}
	if err != nil {
		delete(s.licenses, id)
		s.reject("license.stored", licPrefix+id, err)
		return
	}
	s.licenses[id] = l
}
