// Package buildinfo says which build of tandem is running: the module
// version, the commit and the build date, for `tandem --version` and the
// tandem_build_info metric. The Makefile stamps the commit and the date with
// -ldflags -X (it builds with -buildvcs=false and -trimpath, so the Go
// toolchain records neither); without them the VCS settings Go records are
// used, else "unknown".
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time: -X github.com/tandem-ha/tandem/cmd/tandem/internal/buildinfo.commit=…
var (
	commit string
	date   string
)

// Info is one build.
type Info struct {
	Version string // module version, "(devel)" for a build from a work tree
	Commit  string
	Date    string // RFC 3339
	Go      string // Go version
}

// Get returns the running build's Info.
var Get = sync.OnceValue(func() Info { return read(commit, date) })

func read(commit, date string) Info {
	in := Info{Version: "(devel)", Commit: commit, Date: date, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && in.Commit != "" {
			in.Commit += "-dirty"
		}
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// String is the --version line.
func (in Info) String() string {
	return "tandem " + in.Version + " (commit " + in.Commit + ", built " + in.Date + ", " + in.Go + ")"
}
