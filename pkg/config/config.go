// Package config is a node's configuration (SPEC §8): one struct, its
// defaults in one place (Default), the cross-field rules in Validate, and
// loading from a YAML file, TANDEM_* environment variables and flags (load.go),
// in that order of precedence (flags win).
package config

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// Role is fixed at install: master or standby.
type Role string

// Roles.
const (
	Master  Role = "master"
	Standby Role = "standby"
)

// Failback policies (F9).
const (
	FailbackManual    = "manual"
	FailbackAutomatic = "automatic"
)

// Config is everything a node is told.
type Config struct {
	Pair        string            `yaml:"pair"`
	Node        string            `yaml:"node"`
	Role        Role              `yaml:"role"`
	DataDir     string            `yaml:"data_dir"`
	NATS        NATS              `yaml:"nats"`
	Heart       Heartbeat         `yaml:"heartbeat"`
	Failback    string            `yaml:"failback"`
	Hooks       Hooks             `yaml:"hooks"`
	Hosts       map[string]string `yaml:"hosts"` // node → client-facing host
	Database    Database          `yaml:"database"`
	Notifier    Notifier          `yaml:"notifier"`
	License     License           `yaml:"license"`
	Admin       Admin             `yaml:"admin"`
	Maintenance Maintenance       `yaml:"maintenance"`
	Log         Log               `yaml:"log"`
}

// NATS says where the node's NATS server is.
type NATS struct {
	Listen     string `yaml:"listen"`      // client address of the embedded server
	LeafListen string `yaml:"leaf_listen"` // leafnode address of the embedded server
	Peer       string `yaml:"peer"`        // the peer's leafnode URL, nats-leaf://host:port
	URL        string `yaml:"url"`         // an external NATS instead of the embedded one
	Creds      string `yaml:"creds"`       // credentials file for URL
}

// Heartbeat timing (F5, F6, F7).
type Heartbeat struct {
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	// Discovery is the start-up window (F1); 0 means 3 × Interval.
	Discovery time.Duration `yaml:"discovery"`
	// Settle is how long a healed link must be stable before a collision
	// of two actives is resolved (F7); 0 means 3 × Interval.
	Settle time.Duration `yaml:"settle"`
}

// Hooks are the commands run on transitions (F11).
type Hooks struct {
	OnActive  string        `yaml:"on_active"`
	OnPassive string        `yaml:"on_passive"`
	Timeout   time.Duration `yaml:"timeout"`
}

// Database is the application database the replicator keeps in sync.
type Database struct {
	Path   string   `yaml:"path"`
	Tables []string `yaml:"tables"`
}

// Notifier settings.
type Notifier struct {
	PushListen string `yaml:"push_listen"`
}

// License settings.
type License struct {
	PublicKey string        `yaml:"public_key"`
	Grace     time.Duration `yaml:"grace"`
}

// Admin is the HTTP address of /metrics, /healthz and /readyz.
type Admin struct {
	Listen string `yaml:"listen"`
}

// Maintenance settings (F10).
type Maintenance struct {
	// Default is how long maintenance lasts when no duration is given.
	Default time.Duration `yaml:"default"`
	// Max is the longest maintenance that may be asked for.
	Max time.Duration `yaml:"max"`
}

// Log settings.
type Log struct {
	Format string `yaml:"format"` // json or console
	Level  string `yaml:"level"`
}

// Default returns the defaults of every key.
func Default() Config {
	return Config{
		Role:    Master,
		DataDir: "./data",
		NATS: NATS{
			Listen:     "127.0.0.1:4222",
			LeafListen: "0.0.0.0:7422",
		},
		Heart: Heartbeat{
			Interval: time.Second,
			Timeout:  3 * time.Second,
		},
		Failback: FailbackManual,
		Hooks:    Hooks{Timeout: 30 * time.Second},
		Notifier: Notifier{PushListen: ":8009"},
		License:  License{Grace: 28 * 24 * time.Hour},
		Admin:    Admin{Listen: "127.0.0.1:8080"},
		Maintenance: Maintenance{
			Default: time.Hour,
			Max:     24 * time.Hour,
		},
		Log: Log{Format: "json", Level: "info"},
	}
}

// DiscoveryWindow is the effective F1 window.
func (h Heartbeat) DiscoveryWindow() time.Duration {
	if h.Discovery > 0 {
		return h.Discovery
	}
	return 3 * h.Interval
}

// SettleDelay is the effective F7 settle delay.
func (h Heartbeat) SettleDelay() time.Duration {
	if h.Settle > 0 {
		return h.Settle
	}
	return 3 * h.Interval
}

// Embedded reports whether the node runs its own NATS server.
func (c Config) Embedded() bool { return c.NATS.URL == "" }

// Validate checks every key and the rules between keys. It names the key.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := subject.CheckName("pair", c.Pair); err != nil {
		add("pair: %w", err)
	}
	if err := subject.CheckName("node", c.Node); err != nil {
		add("node: %w", err)
	}
	if c.Role != Master && c.Role != Standby {
		add("role: %q is neither master nor standby", c.Role)
	}
	if c.DataDir == "" {
		add("data_dir: empty")
	}
	if c.Embedded() {
		if err := checkAddr(c.NATS.Listen); err != nil {
			add("nats.listen: %w", err)
		}
		if c.NATS.LeafListen != "" {
			if err := checkAddr(c.NATS.LeafListen); err != nil {
				add("nats.leaf_listen: %w", err)
			}
		}
		if c.NATS.Peer != "" && !strings.Contains(c.NATS.Peer, "://") {
			add("nats.peer: %q is not a URL (nats-leaf://host:port)", c.NATS.Peer)
		}
	}
	h := c.Heart
	switch {
	case h.Interval < 10*time.Millisecond:
		add("heartbeat.interval: %v is below 10ms", h.Interval)
	case h.Timeout < 2*h.Interval:
		add("heartbeat.timeout: %v must be at least 2 × heartbeat.interval (%v)", h.Timeout, h.Interval)
	}
	if h.Discovery < 0 || h.Settle < 0 {
		add("heartbeat.discovery and heartbeat.settle must not be negative")
	}
	if c.Failback != FailbackManual && c.Failback != FailbackAutomatic {
		add("failback: %q is neither manual nor automatic", c.Failback)
	}
	if c.Hooks.Timeout <= 0 {
		add("hooks.timeout: %v must be positive", c.Hooks.Timeout)
	}
	for n, host := range c.Hosts {
		if !subject.ValidName(n) {
			add("hosts: node name %q is invalid", n)
		}
		if host == "" {
			add("hosts: node %q has an empty host", n)
		}
	}
	if len(c.Hosts) > 0 {
		if _, ok := c.Hosts[c.Node]; !ok {
			add("hosts: no entry for this node %q", c.Node)
		}
		if len(c.Hosts) > 2 {
			add("hosts: a pair has two nodes, %d given", len(c.Hosts))
		}
	}
	if c.License.Grace <= 0 {
		add("license.grace: %v must be positive", c.License.Grace)
	}
	if c.Maintenance.Default <= 0 || c.Maintenance.Max < c.Maintenance.Default {
		add("maintenance: default %v must be positive and at most max %v", c.Maintenance.Default, c.Maintenance.Max)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		add("log.format: %q is neither json nor console", c.Log.Format)
	}
	return errors.Join(errs...)
}

func checkAddr(a string) error {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%q: %w", a, err)
	}
	return nil
}
