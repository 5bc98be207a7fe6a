package session

import (
	"strings"

	"github.com/tandem-ha/tandem/pkg/api"
)

// Connection is one connection of a session to a resource (a printer
// queue, a line): its address and its settings, which a switch keeps (N2).
type Connection struct {
	Address string            `json:"address"`
	Default bool              `json:"default,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

// HostOf returns the host an address names, and its position in addr
// (addr[i:j]); ok is false when addr names none. It understands UNC paths
// (\\host\share, //host/share), URLs (scheme://[user@]host[:port]/…,
// IPv6 in brackets) and bare host[:port][/…].
func HostOf(addr string) (host string, i, j int, ok bool) {
	switch {
	case strings.HasPrefix(addr, `\\`), strings.HasPrefix(addr, `//`):
		i = 2
		j = i + strings.IndexAny(addr[i:], `\/`)
		if j < i {
			j = len(addr)
		}
	case strings.Contains(addr, "://"):
		i = strings.Index(addr, "://") + 3
		end := i + strings.IndexAny(addr[i:], "/?#")
		if end < i {
			end = len(addr)
		}
		if at := strings.LastIndexByte(addr[i:end], '@'); at >= 0 {
			i += at + 1
		}
		j = hostEnd(addr, i, end)
	default:
		end := strings.IndexAny(addr, `/\?#`)
		if end < 0 {
			end = len(addr)
		}
		j = hostEnd(addr, 0, end)
	}
	if j <= i {
		return "", 0, 0, false
	}
	return addr[i:j], i, j, true
}

// hostEnd is where the host starting at i ends before a port, within end.
func hostEnd(addr string, i, end int) int {
	if i < end && addr[i] == '[' {
		if k := strings.IndexByte(addr[i:end], ']'); k >= 0 {
			return i + k + 1
		}
		return end
	}
	if k := strings.LastIndexByte(addr[i:end], ':'); k >= 0 {
		return i + k
	}
	return end
}

// ReplaceHost returns addr with its host replaced by to when the host is
// from (compared without case, as host names are).
func ReplaceHost(addr, from, to string) (string, bool) {
	host, i, j, ok := HostOf(addr)
	if !ok || !strings.EqualFold(host, from) {
		return addr, false
	}
	return addr[:i] + to + addr[j:], true
}

// Rewrite applies a notification to a session's connections (N2): a
// connection whose address is renamed moves to the new address; one whose
// host is an old host of n.Hosts gets the new host; every other connection
// is left alone. Each connection keeps its settings. It returns the new
// connections (conns itself when none switches) and what was switched, in
// order.
func Rewrite(conns []Connection, n api.Notification) ([]Connection, []api.Switch) {
	return rewrite(conns, n.Renames, hostMap(n.Hosts))
}

// hostSwitch is one entry of a notification's host map.
type hostSwitch struct{ from, to string }

// hostMap lists hosts' entries, once per notification rather than once per
// connection of each session (issue 19).
func hostMap(hosts map[string]string) []hostSwitch {
	out := make([]hostSwitch, 0, len(hosts))
	for from, to := range hosts {
		out = append(out, hostSwitch{from, to})
	}
	return out
}

// rewrite is Rewrite with the host map listed; it allocates nothing for a
// session none of whose connections switch.
func rewrite(conns []Connection, renames map[string]string, hosts []hostSwitch) ([]Connection, []api.Switch) {
	var out []Connection
	var switched []api.Switch
	for k, c := range conns {
		to, ok := renames[c.Address]
		if !ok {
			if host, i, j, found := HostOf(c.Address); found {
				for _, h := range hosts {
					if strings.EqualFold(host, h.from) {
						to, ok = c.Address[:i]+h.to+c.Address[j:], true
						break
					}
				}
			}
		}
		if !ok || to == c.Address {
			continue
		}
		if out == nil {
			out = append(make([]Connection, 0, len(conns)), conns...)
			switched = make([]api.Switch, 0, len(conns)-k)
		}
		out[k].Address = to
		switched = append(switched, api.Switch{From: c.Address, To: to})
	}
	if out == nil {
		return conns, nil
	}
	return out, switched
}
