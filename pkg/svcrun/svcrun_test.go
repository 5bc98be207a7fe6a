//go:build unix

package svcrun

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLockPartsRefusesASecondHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	release, err := LockParts(dir, "replicator", "license")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockParts(dir, "replicator"); err == nil || !strings.Contains(err.Error(), "in use by another tandem process") {
		t.Fatalf("second lock of replicator: %v", err)
	}
	other, err := LockParts(dir, "notifier")
	if err != nil {
		t.Fatalf("another part: %v", err)
	}
	other()
	release()
	again, err := LockParts(dir, "replicator")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

func TestCheckDataDirSaysWhenItCannotWrite(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root writes anywhere")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := CheckDataDir(dir); err == nil || !strings.Contains(err.Error(), "fix the directory's owner or mode") {
		t.Fatalf("read-only data dir: %v", err)
	}
}

func TestDialWaitsUntilTheContextEnds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 3*DialRetry)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, "nats://"+addr, nil, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "connect to nats://"+addr) {
		t.Fatalf("dial with nothing listening: %v", err)
	}
	if time.Since(start) < 2*DialRetry {
		t.Fatalf("gave up after %v, before the context ended", time.Since(start))
	}
}
