package pairtest

import (
	"context"
	"testing"
	"time"
)

// Running is a service's Run on a goroutine of its own, the way the
// services' tests run it: until Stop, or until it ends by itself (a fault).
type Running struct {
	cancel context.CancelFunc
	exited chan struct{}
	err    error // Run's result; written before exited is closed
}

// Go runs run on a goroutine of its own, with a context Stop cancels.
func Go(run func(context.Context) error) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, exited: make(chan struct{})}
	go func() {
		r.err = run(ctx)
		close(r.exited)
	}()
	return r
}

// Exited is closed once Run has returned.
func (r *Running) Exited() <-chan struct{} { return r.exited }

// Err is what Run returned; call it after Exited is closed.
func (r *Running) Err() error { return r.err }

// Wait waits up to limit for Run to return by itself and returns its error;
// a Run still going at the limit fails the test (what names the service).
func (r *Running) Wait(t testing.TB, what string, limit time.Duration) error {
	t.Helper()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %v", what, limit)
		return nil
	}
}

// Stop cancels Run's context, waits up to limit for it to return, and
// returns its error. A Run that does not return in time is reported as a
// test error (what names the service), and Stop returns nil.
func (r *Running) Stop(t testing.TB, what string, limit time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(limit):
		t.Errorf("%s did not stop within %v", what, limit)
		return nil
	}
}
