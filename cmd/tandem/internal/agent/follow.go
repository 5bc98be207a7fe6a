package agent

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// Drivers of `tandem session --driver`.
const (
	DriverNone    = "none"
	DriverCUPS    = "cups"
	DriverWindows = "windows"
	DriverExec    = "exec"
)

// WindowsRecheck is Follow's default Recheck for the Windows driver: a
// terminal server runs one agent per user, and each pass starts PowerShell.
const WindowsRecheck = time.Minute

// Options are the command line's choice of driver.
type Options struct {
	Driver     string
	Resources  []string // --resource (exec)
	Default    string   // --default (exec)
	Exec       string   // --exec: the command (exec)
	CUPSServer string   // CUPS_SERVER, or --cups-server (cups)
}

// NewDriver returns the driver o names; DriverNone is not one (the caller
// keeps the in-memory session of package session).
func NewDriver(o Options) (Driver, error) {
	switch o.Driver {
	case DriverCUPS:
		if len(o.Resources) > 0 || o.Exec != "" {
			return nil, fmt.Errorf("--driver cups reads the local queues: no --resource or --exec")
		}
		c := &CUPS{Server: o.CUPSServer}
		if err := c.Check(); err != nil {
			return nil, fmt.Errorf("--driver cups: %w", err)
		}
		return c, nil
	case DriverWindows:
		if len(o.Resources) > 0 || o.Exec != "" {
			return nil, fmt.Errorf("--driver windows reads the user's printer connections: no --resource or --exec")
		}
		if runtime.GOOS != "windows" {
			return nil, fmt.Errorf("--driver windows runs on Windows only (this is %s)", runtime.GOOS)
		}
		return &Windows{PS: PowerShellExe{}}, nil
	case DriverExec:
		return NewExec(o.Exec, o.Resources, o.Default)
	}
	return nil, fmt.Errorf("--driver %q: want none, cups, windows or exec", o.Driver)
}

// Source is where an agent's notifications come from and its
// acknowledgements go (a *session.Client).
type Source interface {
	Watch(func(api.Notification))
	Acker
}

// Follow runs an agent on src until ctx ends: it carries out the newest
// state at once (the client reads it on connect and after every reconnect)
// and every notification after it.
func Follow(ctx context.Context, src Source, cfg Config) error {
	cfg.Acks = src
	if _, ok := cfg.Driver.(*Windows); ok && cfg.Recheck == 0 {
		cfg.Recheck = WindowsRecheck
	}
	a, err := New(cfg)
	if err != nil {
		return err
	}
	src.Watch(a.Notify)
	return a.Run(ctx)
}
