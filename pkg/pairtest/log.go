package pairtest

import (
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/logging"
)

// Logger writes warnings and errors to t's log until t's cleanups have run;
// lines from goroutines that outlive the test are dropped (t.Log would
// panic). Call it before registering other cleanups. Every line goes
// through the production JSON writer (logging.UniqueKeys) and is checked
// (logging.CheckJSONLine) before it is shown: a line that does not decode,
// or repeats a key, fails the test.
func Logger(t testing.TB) zerolog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(w.stop)
	cw := zerolog.ConsoleWriter{Out: w, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}
	return zerolog.New(logging.UniqueKeys(checked{cw, w})).Level(zerolog.WarnLevel)
}

// checked checks each JSON line before passing it on.
type checked struct {
	next io.Writer
	tb   *tbWriter
}

func (c checked) Write(p []byte) (int, error) {
	if err := logging.CheckJSONLine(p); err != nil {
		c.tb.fail(err)
	}
	return c.next.Write(p)
}

type tbWriter struct {
	mu   sync.Mutex // guards the fields below
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Errorf("pairtest: %v", err)
	}
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}
