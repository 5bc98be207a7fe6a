//go:build linux

package proctest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Usage is what the kernel says a process has used so far.
type Usage struct {
	At  time.Time
	CPU time.Duration // user + system time of all its threads
	RSS int64         // resident set size, bytes
}

// Usage reads node's CPU time and resident memory from /proc (Linux).
func (p *Pair) Usage(node string) (Usage, error) {
	p.t.Helper()
	return ReadUsage(p.PID(node))
}

// ReadUsage reads a process's CPU time and resident memory from /proc.
func ReadUsage(pid int) (Usage, error) {
	at := time.Now()
	fields, err := statFields(pid)
	if err != nil {
		return Usage{}, err
	}
	// After "pid (comm)": field 3 (state) is fields[0], so field k is
	// fields[k-3]; utime is field 14, stime 15, in clock ticks.
	if len(fields) < 13 {
		return Usage{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	rss, err := vmRSS(pid)
	if err != nil {
		return Usage{}, err
	}
	return Usage{At: at, CPU: time.Duration(ticks) * time.Second / time.Duration(clockTicks()), RSS: rss}, nil
}

// CPUShare is the share of one core used between two readings (0.01 = 1 %).
func CPUShare(from, to Usage) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 {
		return 0
	}
	return float64(to.CPU-from.CPU) / float64(wall)
}

// OnCPU is the time a process's threads have run so far, in nanoseconds
// as the scheduler counts it (/proc/PID/task/*/schedstat): the clock-tick
// figures of ReadUsage are too coarse for a window of 30 ms. A thread that
// ended meanwhile no longer counts, so it suits windows in which the
// process keeps its threads (a Go process does).
func OnCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, task.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, task.Name(), err)
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// readProcState is the one-letter state of a process (R, S, D, T, Z, …).
func readProcState(pid int) (byte, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(fields) == 0 || fields[0] == "" {
		return 0, fmt.Errorf("/proc/%d/stat: no state", pid)
	}
	return fields[0][0], nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, rest)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// clockTicks is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), read from the
// auxiliary vector (AT_CLKTCK) without cgo; 100 if it cannot be read.
var clockTicks = sync.OnceValue(func() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil || strconv.IntSize != 64 { // entries of two 64-bit words
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return int64(v)
		}
	}
	return 100
})
