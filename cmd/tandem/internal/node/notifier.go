package node

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/dashboard"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/services/notifier"
)

// newNotifier builds the node's notifier. The push endpoint's bearer tokens
// are read from notifier.tokens_file (default <data_dir>/notifier/push_tokens;
// one per line, # comments); without tokens the endpoint is open only when
// it listens on loopback (the local demo), and refuses every request
// otherwise.
func newNotifier(d deps) (runner, error) {
	file := d.cfg.Notifier.TokensFile
	if file == "" {
		file = filepath.Join(d.cfg.DataDir, "notifier", "push_tokens")
	}
	tokens, err := readTokens(file)
	if err != nil {
		return nil, err
	}
	return notifier.New(notifier.Options{
		Config: d.cfg, Conn: d.nc, JS: d.js, Events: d.events,
		Tokens: tokens, Open: len(tokens) == 0 && config.Loopback(d.cfg.Notifier.PushListen),
		Log: d.log, Registry: d.reg,
	})
}

func readTokens(path string) ([]string, error) {
	lines, err := dashboard.ReadLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return lines, err
}
