//go:build linux

package proctest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Standalone is a T for programs that are not tests (the benchmarks): Logf
// writes to a writer, Fatalf ends the function given to Run, cleanups run
// when it returns. Use it only through Run.
type Standalone struct {
	name string
	log  io.Writer

	mu       sync.Mutex // guards the fields below
	failed   bool
	errs     []string
	cleanups []func()
}

var _ T = (*Standalone)(nil)

// errFatal is the panic value of Fatalf, recovered by Run.
var errFatal = errors.New("proctest: fatal")

// Run runs f with a Standalone T named name, then its cleanups (last
// registered first), and returns an error carrying every Errorf and Fatalf
// message, or nil. Fatalf must be called from f's goroutine, as with
// testing.T.
func Run(name string, log io.Writer, f func(T)) (err error) {
	s := &Standalone{name: name, log: log}
	defer func() {
		s.runCleanups()
		if s.Failed() {
			err = fmt.Errorf("%s: %s", name, strings.Join(s.errs, "; "))
		}
	}()
	defer func() {
		if r := recover(); r != nil && r != errFatal {
			panic(r)
		}
	}()
	f(s)
	return nil
}

func (s *Standalone) runCleanups() {
	for {
		s.mu.Lock()
		if len(s.cleanups) == 0 {
			s.mu.Unlock()
			return
		}
		c := s.cleanups[len(s.cleanups)-1]
		s.cleanups = s.cleanups[:len(s.cleanups)-1]
		s.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil && r != errFatal {
					panic(r)
				}
			}()
			c()
		}()
	}
}

// Helper does nothing.
func (s *Standalone) Helper() {}

// Logf writes a line to the log.
func (s *Standalone) Logf(format string, args ...any) {
	fmt.Fprintf(s.log, "%s: %s\n", s.name, fmt.Sprintf(format, args...))
}

// Errorf logs and marks the run failed.
func (s *Standalone) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.failed = true
	s.errs = append(s.errs, firstLine(msg))
	s.mu.Unlock()
	s.Logf("%s", msg)
}

// Fatalf is Errorf, then ends the function given to Run.
func (s *Standalone) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	panic(errFatal)
}

// Cleanup registers a function to run when Run's function returns.
func (s *Standalone) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir makes a directory that is removed at cleanup.
func (s *Standalone) TempDir() string {
	dir, err := os.MkdirTemp("", "proctest-"+s.name+"-")
	if err != nil {
		s.Fatalf("temp dir: %v", err)
	}
	s.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Failed reports whether Errorf or Fatalf was called.
func (s *Standalone) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
