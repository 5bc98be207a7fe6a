// Package witness is the optional third party of a pair (F14): a small
// process on a third machine that holds a lease for the active node, so
// that two nodes cut off from each other cannot both be active while the
// witness is reachable. The server (Server) answers lease requests over
// NATS with the lease rule (package lease) and keeps the leases in a
// JetStream key-value bucket; Ask is what a node's monitor asks it with.
package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

// Bucket is the key-value bucket the witness keeps its leases in, one key
// per pair.
const Bucket = "tandem_witness"

// MaxRequest is the largest request accepted.
const MaxRequest = 1 << 10

// The terms a node may ask for.
const (
	MinTTL = 100 * time.Millisecond
	MaxTTL = 10 * time.Minute
)

// Subject is the subject a pair's nodes ask the witness on.
func Subject(pair string) string { return subject.WitnessLease(pair) }

// ServerOptions configure a witness.
type ServerOptions struct {
	Listen   string // host:port of its NATS server; loopback unless Pairs or Insecure
	DataDir  string // where JetStream keeps the leases
	Insecure bool   // allow a non-loopback listener without credentials
	// Pairs maps a pair to the public nkey of its nodes' user: set, every
	// client must sign in, and may ask only for its own pair's lease.
	Pairs map[string]string
	TLS   natsnode.TLSFiles // Cert and Key: serve TLS
	Log   zerolog.Logger
}

// Server is a running witness: an embedded NATS server with JetStream, a
// key-value bucket of leases, and a responder that applies Decide.
//
// Concurrency: the NATS callback goroutine serves requests; mu guards
// leases.
type Server struct {
	ns    *server.Server
	url   string
	nc    *nats.Conn
	kv    jetstream.KeyValue
	sub   *nats.Subscription
	log   zerolog.Logger
	start time.Time

	mu     sync.Mutex // guards leases
	leases map[string]lease.Lease
}

// Start starts a witness.
func Start(ctx context.Context, o ServerOptions) (*Server, error) {
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, fmt.Errorf("witness: --listen %q: %w", o.Listen, err)
	}
	if !config.Loopback(o.Listen) && len(o.Pairs) == 0 && !o.Insecure {
		return nil, fmt.Errorf("witness: --listen %s is not a loopback address: anyone on the network could take the pairs' leases; set witness.pairs, or pass --insecure to allow it", o.Listen)
	}
	if o.DataDir == "" {
		return nil, errors.New("witness: --data-dir is required")
	}
	ns, url, err := natsnode.StartWitnessServer(natsnode.WitnessOptions{Listen: o.Listen, StoreDir: filepath.Join(o.DataDir, "jetstream"),
		Pairs: o.Pairs, TLS: o.TLS, Logger: o.Log.With().Str("part", "nats").Logger()})
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	s := &Server{ns: ns, url: url, log: o.Log, start: time.Now(), leases: map[string]lease.Lease{}}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(ctx context.Context) error {
	nc, err := natsnode.ConnectWitnessServer(s.ns)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	s.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("witness: bucket %s: %w", Bucket, err)
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	s.sub, err = nc.Subscribe(Subject("*"), s.serve)
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	return nc.Flush()
}

// stored is a lease as the bucket keeps it: the term rather than the
// expiry, since the witness's clock starts again with each start.
type stored struct {
	Holder string `json:"holder"`
	Epoch  uint64 `json:"epoch"`
	TTLMS  int64  `json:"ttl_ms"`
}

// load reads the leases back after a restart. Each counts as renewed now:
// its holder may still believe it holds it for a whole term. For that term
// the witness is unsure of it, as of a lease it lost (lease.Lease.Unsure):
// the other node's renewal in a higher epoch replaces it. That node is
// active in a newer epoch than the stored lease's, taken over while the
// witness was down (the holder's process proven dead, or the seed fallback
// of witness.required false): keeping the stored lease made the only live
// node step down at the witness's return.
func (s *Server) load(ctx context.Context) error {
	keys, err := s.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("witness: read leases: %w", err)
	}
	now := s.now()
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("witness: read lease %s: %w", k, err)
		}
		var st stored
		if err := event.DecodeStrict(e.Value(), MaxRequest, &st); err != nil {
			s.log.Warn().Err(err).Str("pair", k).Msg("witness: unreadable lease dropped")
			continue
		}
		s.leases[k] = lease.Lease{Holder: st.Holder, Epoch: st.Epoch, Expires: now + st.TTLMS, Unsure: now + st.TTLMS}
	}
	return nil
}

func (s *Server) now() int64 { return time.Since(s.start).Milliseconds() }

func (s *Server) serve(m *nats.Msg) {
	pair := subject.WitnessPair(m.Subject)
	rep, err := s.handle(pair, m.Data)
	var b []byte
	if err != nil {
		s.log.Warn().Err(err).Str("pair", pair).Msg("witness: request refused")
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	} else {
		b, _ = json.Marshal(rep)
	}
	if m.Reply != "" {
		_ = m.Respond(b)
	}
}

func (s *Server) handle(pair string, data []byte) (lease.Reply, error) {
	var r lease.Request
	if err := subject.CheckName("pair", pair); err != nil {
		return lease.Reply{}, err
	}
	if err := event.DecodeStrict(data, MaxRequest, &r); err != nil {
		return lease.Reply{}, fmt.Errorf("lease request: %w", err)
	}
	switch {
	case !subject.ValidName(r.Node):
		return lease.Reply{}, fmt.Errorf("lease request: node %q", r.Node)
	case r.Over && !subject.ValidName(r.Peer):
		return lease.Reply{}, fmt.Errorf("lease request: peer %q", r.Peer)
	case !r.Probe && (r.TTLMS < MinTTL.Milliseconds() || r.TTLMS > MaxTTL.Milliseconds()):
		return lease.Reply{}, fmt.Errorf("lease request: term %d ms outside %v…%v", r.TTLMS, MinTTL, MaxTTL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[pair]
	if !ok {
		// No lease stored for the pair: one this witness granted before a
		// restart that lost its data may run for a term from the start.
		cur = lease.Lease{Unsure: r.TTLMS, Expires: r.TTLMS}
	}
	next, rep := lease.Decide(cur, r, s.now(), r.TTLMS)
	if next != cur {
		if next.Holder != cur.Holder || next.Epoch != cur.Epoch {
			b, _ := json.Marshal(stored{Holder: next.Holder, Epoch: next.Epoch, TTLMS: r.TTLMS})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := s.kv.Put(ctx, pair, b)
			cancel()
			if err != nil {
				return lease.Reply{}, fmt.Errorf("store the lease: %w", err) // not granted unless stored
			}
			s.log.Info().Str("pair", pair).Str("holder", next.Holder).Uint64("epoch", next.Epoch).Msg("witness: lease granted")
		}
		s.leases[pair] = next
	}
	return rep, nil
}

// ClientURL is the URL nodes reach the witness at.
func (s *Server) ClientURL() string { return s.url }

// Close stops the witness.
func (s *Server) Close() {
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Ask sends a lease request for pair to the witness nc is connected to.
func Ask(ctx context.Context, nc *nats.Conn, pair string, r lease.Request) (lease.Reply, error) {
	b, _ := json.Marshal(r)
	m, err := nc.RequestWithContext(ctx, Subject(pair), b)
	if err != nil {
		return lease.Reply{}, err
	}
	var out struct {
		lease.Reply
		Error string `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &out); err != nil {
		return lease.Reply{}, fmt.Errorf("witness reply: %w", err)
	}
	if out.Error != "" {
		return lease.Reply{}, fmt.Errorf("witness: %s", out.Error)
	}
	return out.Reply, nil
}
