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
	return newRewriter(n, 1).rewrite(conns)
}

// hostSwitch is one entry of a notification's host map.
type hostSwitch struct{ from, to string }

// rewriter applies one notification to the connections of the sessions of
// one delivery. The sessions of a client (a terminal server's) mostly share
// their printers, so the rewriter remembers each address it looked at, and
// the sessions' new connections and switches are cut from shared blocks:
// an allocation or three per session, and the parsing of every address,
// were most of a delivery's CPU and its garbage (issue 19).
type rewriter struct {
	renames map[string]string
	hosts   []hostSwitch      // the host map, listed once
	seen    map[string]target // nil for one session
	block   int               // the size of a block
	conns   []Connection      // the block new connections are cut from
	sw      []api.Switch      // the block switches are cut from
}

// target is what an address becomes: to, when ok.
type target struct {
	to string
	ok bool
}

// Bounds of a rewriter's memory: the addresses it remembers, and the size
// of a block.
const (
	maxSeen  = 1024
	maxBlock = 256
)

// newRewriter is a rewriter of n for about sessions sessions (a client
// holding one session has no use for the memory or a large block).
func newRewriter(n api.Notification, sessions int) *rewriter {
	r := &rewriter{renames: n.Renames, hosts: make([]hostSwitch, 0, len(n.Hosts)), block: min(maxBlock, 4*max(sessions, 1))}
	if sessions > 1 {
		r.seen = map[string]target{}
	}
	for from, to := range n.Hosts {
		r.hosts = append(r.hosts, hostSwitch{from, to})
	}
	return r
}

// rewrite is Rewrite with r's notification; it allocates nothing for a
// session none of whose connections switch. The slices it returns are cut
// to their length: appending to one never writes another's.
func (r *rewriter) rewrite(conns []Connection) ([]Connection, []api.Switch) {
	var out []Connection
	var switched []api.Switch
	for k, c := range conns {
		to, ok := r.target(c.Address)
		if !ok {
			continue
		}
		if out == nil {
			out = r.takeConns(conns)
			switched = r.takeSwitches(len(conns) - k)
		}
		out[k].Address = to
		switched = append(switched, api.Switch{From: c.Address, To: to})
	}
	if out == nil {
		return conns, nil
	}
	return out, switched[:len(switched):len(switched)]
}

// target is what addr becomes, if it switches.
func (r *rewriter) target(addr string) (string, bool) {
	if t, ok := r.seen[addr]; ok {
		return t.to, t.ok
	}
	to, ok := r.renames[addr]
	if !ok {
		if host, i, j, found := HostOf(addr); found {
			for _, h := range r.hosts {
				if strings.EqualFold(host, h.from) {
					to, ok = addr[:i]+h.to+addr[j:], true
					break
				}
			}
		}
	}
	ok = ok && to != addr
	if r.seen != nil && len(r.seen) < maxSeen {
		r.seen[addr] = target{to, ok}
	}
	return to, ok
}

// takeConns is a copy of src cut from the current block.
func (r *rewriter) takeConns(src []Connection) []Connection {
	if cap(r.conns)-len(r.conns) < len(src) {
		r.conns = make([]Connection, 0, max(r.block, len(src)))
	}
	k := len(r.conns)
	r.conns = append(r.conns, src...)
	return r.conns[k:len(r.conns):len(r.conns)]
}

// takeSwitches is an empty slice with room for n switches, cut from the
// current block.
func (r *rewriter) takeSwitches(n int) []api.Switch {
	if cap(r.sw)-len(r.sw) < n {
		r.sw = make([]api.Switch, 0, max(r.block, n))
	}
	k := len(r.sw)
	r.sw = r.sw[:k+n]
	return r.sw[k : k : k+n]
}
