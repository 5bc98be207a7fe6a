package session

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ServerURLs is the list of NATS server URLs an operator wrote, ready for
// nats.go: an entry may hold several, separated by commas; blanks, empty
// entries and repeats are dropped (an empty entry would be nats.go's
// default URL). A URL without a scheme is nats://; one with a scheme other
// than nats, tls, ws or wss (http://, a typo), without a host, with a bad
// port, or with a path where NATS takes none is refused, naming it: nats.go would try it as a NATS server and every
// command would report that no node answers.
func ServerURLs(entries ...string) ([]string, error) {
	var list []string
	for _, e := range entries {
		for _, u := range strings.Split(e, ",") {
			if u = strings.TrimSpace(u); u != "" && !slices.Contains(list, u) {
				list = append(list, u)
			}
		}
	}
	if len(list) == 0 {
		return nil, errors.New("no server URL given")
	}
	for _, u := range list {
		if err := checkServerURL(u); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func checkServerURL(s string) error {
	full := s
	if !strings.Contains(s, "://") {
		full = "nats://" + s
	}
	u, err := url.Parse(full)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err
	}
	if err != nil {
		return fmt.Errorf("server URL %q: %v", s, err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("server URL %q: scheme %q is not NATS's (nats://, tls://, ws:// or wss://)", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("server URL %q: no host", s)
	}
	if (u.Scheme == "nats" || u.Scheme == "tls") && strings.Trim(u.Path, "/") != "" {
		return fmt.Errorf("server URL %q: a path (%q) after host:port", s, u.Path)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("server URL %q: port %q is not a number from 1 to 65535", s, p)
		}
	}
	return nil
}
