//go:build linux

package proctest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Witness is a `tandem witness` process (F14).
type Witness struct {
	URL     string // nats://127.0.0.1:port, for the nodes' witness.url (on loopback)
	LogPath string // its stdout and stderr, every start appended
	Starts  int

	t       T
	bin     string
	wait    time.Duration
	opts    WitnessOptions
	listen  string
	dataDir string
	prefix  []string // ip netns exec <namespace>, in a pair's witness namespace
	cmd     *exec.Cmd
}

// WitnessOptions describe a witness.
type WitnessOptions struct {
	// Pairs are the witness.pairs keys (pair → public nkey); nil: open,
	// on loopback or in the pair's namespaces (insecure).
	Pairs map[string]string
	// Cert and Key serve TLS.
	Cert, Key string
}

// StartWitness runs `tandem witness` on a free loopback port with a fresh
// data directory, waits until it listens, and kills it at t's cleanup.
func StartWitness(t T, bin string, wait time.Duration) *Witness {
	t.Helper()
	return StartWitnessWith(t, bin, wait, WitnessOptions{})
}

// StartWitnessWith is StartWitness with options.
func StartWitnessWith(t T, bin string, wait time.Duration, o WitnessOptions) *Witness {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatalf("proctest: witness port: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	w := newWitness(t, bin, wait, o, addr, nil)
	w.URL = "nats://" + addr
	if o.Cert != "" {
		w.URL = "tls://" + addr
	}
	w.start()
	return w
}

func newWitness(t T, bin string, wait time.Duration, o WitnessOptions, listen string, prefix []string) *Witness {
	dir := t.TempDir()
	w := &Witness{t: t, bin: bin, wait: wait, opts: o, listen: listen, prefix: prefix,
		dataDir: filepath.Join(dir, "witness"), LogPath: filepath.Join(dir, "witness.log")}
	t.Cleanup(w.Kill)
	return w
}

// args is the witness's command line.
func (w *Witness) args() []string {
	argv := append(append([]string{}, w.prefix...), w.bin, "witness", "--listen", w.listen, "--data-dir", w.dataDir,
		"--log-format", "json")
	if len(w.prefix) > 0 && len(w.opts.Pairs) == 0 {
		argv = append(argv, "--insecure") // its namespace is reached by the pair only
	}
	if len(w.opts.Pairs) > 0 {
		pairs := make([]string, 0, len(w.opts.Pairs))
		for pair, key := range w.opts.Pairs {
			pairs = append(pairs, pair+"="+key)
		}
		argv = append(argv, "--witness.pairs", strings.Join(pairs, ","))
	}
	if w.opts.Cert != "" {
		argv = append(argv, "--nats.tls.cert", w.opts.Cert, "--nats.tls.key", w.opts.Key)
	}
	return argv
}

// start runs the witness and waits until it listens.
func (w *Witness) start() {
	w.t.Helper()
	if err := w.spawn(); err != nil {
		w.t.Fatalf("proctest: witness: %v", err)
	}
}

func (w *Witness) spawn() error {
	f, err := os.OpenFile(w.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own copy
	w.Starts++
	fmt.Fprintf(f, "=== proctest: start %d of the witness at %s ===\n", w.Starts, time.Now().Format(time.RFC3339Nano))
	argv := w.args()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = f
	cmd.Env = nodeEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.cmd = cmd
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "witness listening on ") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case <-ready:
		return nil
	case <-time.After(w.wait):
		w.Kill()
		return fmt.Errorf("the witness did not start within %v (log %s)", w.wait, w.LogPath)
	}
}

// Kill kills the witness with SIGKILL and reaps it; a second call does
// nothing.
func (w *Witness) Kill() {
	if w.cmd == nil || w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait()
}

// Restart kills the witness and starts it again on the same address; with
// fresh it loses its leases (a new, empty data directory), as a witness
// moved to a new machine or restored without its data does.
func (w *Witness) Restart(fresh bool) {
	w.t.Helper()
	w.Kill()
	if fresh {
		w.dataDir = filepath.Join(w.t.TempDir(), "witness")
	}
	w.start()
}

// startWitness starts the pair's witness (Options.Witness): on loopback, or
// in the witness's namespace listening on every address there.
func (p *Pair) startWitness(o WitnessOptions) *Witness {
	p.t.Helper()
	if p.ns == nil {
		return StartWitnessWith(p.t, p.bin, p.opts.Wait, o)
	}
	w := newWitness(p.t, p.bin, p.opts.Wait, o, "0.0.0.0:4250", []string{"ip", "netns", "exec", p.ns.witness})
	w.start()
	return w
}

// witnessURL is the witness's URL as node reaches it.
func (p *Pair) witnessURL(node string) string {
	if p.ns == nil {
		return p.wit.URL
	}
	scheme := "nats://"
	if p.wit.opts.Cert != "" {
		scheme = "tls://"
	}
	return scheme + p.ns.witnessAddr[node] + ":4250"
}

// Witness is the pair's witness (Options.Witness), nil without one.
func (p *Pair) Witness() *Witness { return p.wit }
