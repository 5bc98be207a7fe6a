package pairtest

import (
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// Logger writes warnings and errors to t's log until t's cleanups have run;
// lines from goroutines that outlive the test are dropped (t.Log would
// panic). Call it before registering other cleanups.
func Logger(t testing.TB) zerolog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(w.stop)
	cw := zerolog.ConsoleWriter{Out: w, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}
	return zerolog.New(cw).Level(zerolog.WarnLevel)
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

func (w *tbWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}
