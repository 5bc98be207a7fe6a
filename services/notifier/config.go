package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// ConfigSource reads the pair configuration from the database. The
// notifier never opens the database: NATSConfig asks the replicator.
type ConfigSource interface {
	Read(ctx context.Context) (api.PairConfig, error)
}

// NATSConfig reads the pair configuration from Node's replicator with the
// repl.config verb (pkg/api/notifier.go documents the contract).
type NATSConfig struct {
	Conn           *nats.Conn
	Pair, Node     string
	HostsTable     string // default api.DefaultHostsTable
	ResourcesTable string // default api.DefaultResourcesTable
}

var _ ConfigSource = NATSConfig{}

// Read sends the request and decodes the reply.
func (c NATSConfig) Read(ctx context.Context) (api.PairConfig, error) {
	req := api.ConfigRequest{
		Request: api.Request{V: api.Version, Pair: c.Pair}, Node: c.Node,
		HostsTable: orDefault(c.HostsTable, api.DefaultHostsTable), ResourcesTable: orDefault(c.ResourcesTable, api.DefaultResourcesTable),
	}
	data, err := json.Marshal(req)
	if err != nil {
		return api.PairConfig{}, err
	}
	subj := subject.ReplConfig(c.Pair, c.Node)
	msg, err := c.Conn.RequestWithContext(ctx, subj, data)
	if err != nil {
		return api.PairConfig{}, &reply.Error{Code: reply.CodeUnavailable, Message: fmt.Sprintf("no answer on %s: %v", subj, err)}
	}
	r, err := api.DecodeConfigReply(msg.Data)
	if err != nil {
		return api.PairConfig{}, err
	}
	return r.Config, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// cacheFile is the on-disk copy of the last configuration read (N4).
type cacheFile struct {
	Pair   string         `json:"pair"`
	ReadAt time.Time      `json:"read_at"`
	Config api.PairConfig `json:"config"`
}

// loadCache reads the cached configuration; (nil, nil) when there is none.
func loadCache(path, pair string) (*api.PairConfig, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("config cache %s: %w", path, err)
	}
	if c.Pair != pair {
		return nil, fmt.Errorf("config cache %s is for pair %q", path, c.Pair)
	}
	if err := c.Config.Validate(); err != nil {
		return nil, fmt.Errorf("config cache %s: %w", path, err)
	}
	return &c.Config, nil
}

// saveCache writes the cache atomically (temporary file, fsync, rename).
func saveCache(path, pair string, pc api.PairConfig, at time.Time) error {
	b, err := json.MarshalIndent(cacheFile{Pair: pair, ReadAt: at.UTC(), Config: pc}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pairconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
