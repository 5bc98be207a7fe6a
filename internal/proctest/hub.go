//go:build linux

package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Hub is a `tandem hub` process of a cluster started by StartHubs.
type Hub struct {
	Name                  string
	Cmd                   *exec.Cmd
	Client, Leaf, Cluster int // ports on 127.0.0.1
}

// StartHubs runs n `tandem hub` processes of bin (Build when ""), routed to
// each other, with env (KEY=VALUE, e.g. TANDEM_HUB_AUTH) added to their
// environment, killed at cleanup. They are not waited for: the fleet's
// bucket appears once the cluster has elected a meta leader.
func StartHubs(t T, bin string, n int, env ...string) []*Hub {
	t.Helper()
	hubs := PlanHubs(t, n)
	RunHubs(t, bin, hubs, env...)
	return hubs
}

// PlanHubs picks the ports of n hub servers without starting them (see
// RunHubs): a pair may then be given their URLs before the hub exists.
func PlanHubs(t T, n int) []*Hub {
	t.Helper()
	ports, err := freePorts(3 * n)
	if err != nil {
		t.Fatalf("ports: %v", err)
	}
	hubs := make([]*Hub, n)
	for i := range hubs {
		hubs[i] = &Hub{Name: fmt.Sprintf("hub%d", i+1), Client: ports[3*i], Leaf: ports[3*i+1], Cluster: ports[3*i+2]}
	}
	return hubs
}

// RunHubs starts the planned hubs as StartHubs does.
func RunHubs(t T, bin string, hubs []*Hub, env ...string) {
	t.Helper()
	if bin == "" {
		bin = Build(t)
	}
	dir := t.TempDir()
	for i, h := range hubs {
		var routes []string
		for j, o := range hubs {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.Cluster))
			}
		}
		log, err := os.Create(filepath.Join(dir, h.Name+".log"))
		if err != nil {
			t.Fatalf("%v", err)
		}
		h.Cmd = exec.Command(bin, "hub", "--name", h.Name, "--data-dir", filepath.Join(dir, h.Name),
			"--listen", fmt.Sprintf("127.0.0.1:%d", h.Client), "--leaf-listen", fmt.Sprintf("127.0.0.1:%d", h.Leaf),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", h.Cluster), "--routes", strings.Join(routes, ","))
		h.Cmd.Env = append(os.Environ(), env...)
		h.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no hub outlives a killed test
		h.Cmd.Stdout, h.Cmd.Stderr = log, log
		if err := h.Cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", h.Name, err)
		}
		t.Cleanup(func() {
			_ = h.Cmd.Process.Signal(syscall.SIGCONT)
			_ = h.Cmd.Process.Kill()
			_ = h.Cmd.Wait()
			log.Close()
			if t.Failed() {
				t.Logf("proctest: last lines of %s's log:\n%s", h.Name, tailFile(log.Name(), 40))
			}
		})
	}
}

// HubURLs are the hubs' client URLs, or with leaf their leafnode URLs
// (hub.url), comma separated.
func HubURLs(hubs []*Hub, leaf bool) string {
	var urls []string
	for _, h := range hubs {
		if leaf {
			urls = append(urls, fmt.Sprintf("nats-leaf://127.0.0.1:%d", h.Leaf))
		} else {
			urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", h.Client))
		}
	}
	return strings.Join(urls, ",")
}
