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

	"github.com/prometheus/client_golang/prometheus"
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

// Register adds the tandem_build_info gauge (always 1, the build in its
// labels: version, commit, date, goversion) to reg, as Prometheus
// exporters do for their own builds.
func Register(reg prometheus.Registerer) {
	in := Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_build_info",
		Help: "The running tandem build: always 1, with the module version, commit, build date and Go version as labels.",
	}, []string{"version", "commit", "date", "goversion"})
	g.WithLabelValues(in.Version, in.Commit, in.Date, in.Go).Set(1)
	reg.MustRegister(g)
}
