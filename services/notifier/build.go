package notifier

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/svcrun"
)

// Build makes a node's notifier from its node's parts (tandem node, tandem
// run notifier and tandem-notifier). The push endpoint's bearer tokens are
// read from notifier.tokens_file (default <data_dir>/notifier/push_tokens;
// one per line, # comments); without tokens the endpoint is open only when
// it listens on loopback (the local demo), and refuses every request
// otherwise.
func Build(d svcrun.Deps) (svcrun.Service, error) {
	file := d.Config.Notifier.TokensFile
	if file == "" {
		file = filepath.Join(d.Config.DataDir, "notifier", "push_tokens")
	}
	tokens, err := config.ReadLines(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return New(Options{
		Config: d.Config, Conn: d.Conn, JS: d.JS, Events: d.Events,
		Tokens: tokens, Open: len(tokens) == 0 && config.Loopback(d.Config.Notifier.PushListen),
		Log: d.Log, Registry: d.Registry,
	})
}
