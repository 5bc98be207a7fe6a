//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// unit is how a row's samples are written.
type unit int

const (
	seconds unit = iota
	percent      // share of one core, in %
	bytes
	count     // events counted
	ratioUnit // a quotient of two times (Tandem ÷ the NATS floor)
)

func (u unit) format(v float64) string {
	switch u {
	case percent:
		return fmt.Sprintf("%.2f %%", v)
	case bytes:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case count:
		return fmt.Sprintf("%.0f", v)
	case ratioUnit:
		return fmt.Sprintf("%.2f×", v)
	}
	d := time.Duration(v * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", v*1e3)
	default:
		return fmt.Sprintf("%.3f s", v)
	}
}

// target is a row's goal: a statistic of its samples at most limit.
type target struct {
	stat  string // "p95" or "max"
	limit float64
}

// row is one line of the table.
type row struct {
	what    string
	unit    unit
	samples []float64
	target  *target // nil: for information
	failure string  // the benchmark could not run
}

// stats are a row's nearest-rank percentiles.
type stats struct {
	n             int
	p50, p95, max float64
}

func summarize(samples []float64) stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return stats{n: len(s), p50: rank(0.50), p95: rank(0.95), max: s[len(s)-1]}
}

func (st stats) get(name string) float64 {
	switch name {
	case "p50":
		return st.p50
	case "p95":
		return st.p95
	}
	return st.max
}

// cells are the row's columns: what, runs, p50, p95, max, target, verdict.
func (r row) cells() []string {
	if r.failure != "" {
		return []string{r.what, "-", "-", "-", "-", "-", "FAILED: " + r.failure}
	}
	if len(r.samples) == 0 {
		return []string{r.what, "0", "-", "-", "-", "-", "no samples"}
	}
	st := summarize(r.samples)
	tgt, verdict := "-", "info"
	if r.target != nil {
		tgt = fmt.Sprintf("%s ≤ %s", r.target.stat, r.unit.format(r.target.limit))
		verdict = "ok"
		if st.get(r.target.stat) > r.target.limit {
			verdict = "MISSED"
		}
	}
	return []string{r.what, fmt.Sprint(st.n), r.unit.format(st.p50), r.unit.format(st.p95), r.unit.format(st.max), tgt, verdict}
}

// printReport prints the machine, the date and the table.
func printReport(w io.Writer, e env, rows []row) {
	fmt.Fprintf(w, "\nTandem benchmarks (SPEC §10), %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %d × %s, kernel %s, %s/%s\n", runtime.NumCPU(), cpuModel(), kernel(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "load:    %s (1, 5, 15 min), with whatever else runs on the machine\n", loadAverage())
	fmt.Fprintf(w, "binary:  %s; heartbeat defaults (profile seed: interval 1s, timeout 3s) unless a row names the fast profile; %d runs per failover benchmark\n\n", e.bin, e.runs)
	table := [][]string{{"what", "runs", "p50", "p95", "max", "target", "verdict"}}
	for _, r := range rows {
		table = append(table, r.cells())
	}
	widths := make([]int, len(table[0]))
	for _, cells := range table {
		for i, c := range cells {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		parts := make([]string, len(cells))
		for i, c := range cells {
			parts[i] = c + strings.Repeat(" ", widths[i]-len([]rune(c)))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(parts, " | "))
	}
	line(table[0])
	seps := make([]string, len(widths))
	for i, n := range widths {
		seps[i] = strings.Repeat("-", n)
	}
	fmt.Fprintf(w, "|-%s-|\n", strings.Join(seps, "-|-"))
	for _, cells := range table[1:] {
		line(cells)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
