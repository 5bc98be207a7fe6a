package config

import (
	"reflect"
	"testing"
	"time"
)

const checksBase = "pair: p\nnode: a\n"

// TestChecksShortForm reads checks: as a list, with the defaults of F15
// filled in (interval 1s, timeout = interval, fall 3, rise 2).
func TestChecksShortForm(t *testing.T) {
	c, err := Load(writeFile(t, checksBase+`
checks:
  - name: spooler
    exec: systemctl is-active --quiet cups
  - name: web
    http: http://127.0.0.1:631/
    interval: 500ms
    fall: 2
  - name: port
    tcp: 127.0.0.1:631
    interval: 2s
    timeout: 300ms
    rise: 5
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Check{
		{Name: "spooler", Exec: "systemctl is-active --quiet cups", Interval: time.Second, Timeout: time.Second, Fall: 3, Rise: 2},
		{Name: "web", HTTP: "http://127.0.0.1:631/", Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Fall: 2, Rise: 2},
		{Name: "port", TCP: "127.0.0.1:631", Interval: 2 * time.Second, Timeout: 300 * time.Millisecond, Fall: 3, Rise: 5},
	}
	if !reflect.DeepEqual(c.Checks.List, want) {
		t.Errorf("checks\n got %+v\nwant %+v", c.Checks.List, want)
	}
	if c.Checks.TakeoverWhenUnhealthy {
		t.Error("takeover_when_unhealthy on by default")
	}
}

// TestChecksLongForm reads the mapping form, and the takeover key from the
// environment.
func TestChecksLongForm(t *testing.T) {
	file := writeFile(t, checksBase+`
checks:
  takeover_when_unhealthy: true
  list:
    - name: spooler
      tcp: 127.0.0.1:631
`)
	c, err := Load(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Checks.TakeoverWhenUnhealthy || len(c.Checks.List) != 1 || c.Checks.List[0].Kind() != "tcp" {
		t.Errorf("got %+v", c.Checks)
	}
	c, err = Load(file, []string{"TANDEM_CHECKS_TAKEOVER_WHEN_UNHEALTHY=false"}, nil)
	if err != nil || c.Checks.TakeoverWhenUnhealthy {
		t.Errorf("environment did not override: %+v %v", c.Checks, err)
	}
}

// TestChecksBad refuses bad checks with the check and the field named.
func TestChecksBad(t *testing.T) {
	for name, tt := range map[string]struct{ yaml, want string }{
		"no kind":      {"- name: x\n", `"x": set exactly one of exec, http and tcp`},
		"two kinds":    {"- name: x\n  exec: true\n  tcp: 127.0.0.1:1\n", "exactly one"},
		"bad name":     {"- name: Bad Name\n  exec: true\n", `name "Bad Name"`},
		"twice":        {"- name: x\n  exec: true\n- name: x\n  exec: true\n", `"x" given twice`},
		"bad url":      {"- name: x\n  http: ftp://h/\n", "not an http:// or https:// URL"},
		"bad tcp":      {"- name: x\n  tcp: nohost\n", "tcp:"},
		"bad interval": {"- name: x\n  exec: true\n  interval: soon\n", "interval"},
		"tiny":         {"- name: x\n  exec: true\n  interval: 1ms\n", "below 10ms"},
		"interval 0":   {"- name: x\n  exec: true\n  interval: 0s\n", "checks.list item 1: interval: 0s: want at least 10ms; leave it out for 1s"},
		"fall zero":    {"- name: x\n  exec: true\n  fall: 0\n", "fall"},
		"unknown":      {"- name: x\n  exec: true\n  retries: 3\n", `unknown field "retries"`},
		"not a list":   {"  list: nope\n", "want a list of checks"},
		"scalar item":  {"- spooler\n", "want a mapping"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeFile(t, checksBase+"checks:\n"+tt.yaml), nil, nil)
			wantErr(t, err, tt.want)
		})
	}
}
