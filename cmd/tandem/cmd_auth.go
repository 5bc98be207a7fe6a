package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

func init() {
	commandFactories = append(commandFactories, newAuthCmd)
}

func newAuthCmd(*app) *cobra.Command {
	c := &cobra.Command{
		Use:   "auth init|session|witness …",
		Short: "NATS credentials: auth init makes one nkey seed per role and prints the nats.auth block",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	var dir, roles string
	sub := &cobra.Command{
		Use:   "init --dir DIR [--roles ROLE,...]",
		Short: "write DIR/<role>.nk (0600, never overwriting) and print the nats.auth block of their public keys",
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdAuthInit(dir, roles, c.OutOrStdout())
		},
	}
	sub.Flags().StringVar(&dir, "dir", "", "directory for the seed files <role>.nk (created 0700 if missing)")
	sub.Flags().StringVar(&roles, "roles", strings.Join(defaultAuthRoles(), ","),
		"comma list of roles, of "+strings.Join(config.AuthRoles, ", "))
	c.AddCommand(sub)
	var sdir string
	session := &cobra.Command{
		Use:   "session NAME --dir DIR",
		Short: "write DIR/session-NAME.nk and print the nats.sessions line of its public key (a per-session key, revoked by removing the line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return cmdAuthSession(args[0], sdir, c.OutOrStdout())
		},
	}
	session.Flags().StringVar(&sdir, "dir", "", "directory for the seed file session-NAME.nk (created 0700 if missing)")
	c.AddCommand(session)
	var wdir string
	wit := &cobra.Command{
		Use:   "witness PAIR --dir DIR",
		Short: "write DIR/witness-PAIR.nk, the pair's key at the witness (both nodes' witness.creds), and print the witness.pairs line of its public key",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return cmdAuthWitness(args[0], wdir, c.OutOrStdout())
		},
	}
	wit.Flags().StringVar(&wdir, "dir", "", "directory for the seed file witness-PAIR.nk (created 0700 if missing)")
	c.AddCommand(wit)
	return c
}

// cmdAuthWitness writes a pair's key at the witness and prints the lines of
// configuration that use it.
func cmdAuthWitness(pair, dir string, out io.Writer) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	path, pub, err := natsnode.WriteWitnessSeed(dir, pair)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	fmt.Fprintf(out, "# Both nodes of pair %s (copy %s to each):\nwitness:\n  creds: %s\n", pair, abs, abs)
	fmt.Fprintf(out, "# The witness (tandem witness --config; keep every pair's line):\nwitness:\n  pairs:\n    %s: %s\n", pair, pub)
	return nil
}

// cmdAuthSession writes a session's own key and prints the configuration
// line that admits it.
func cmdAuthSession(name, dir string, out io.Writer) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	path, pub, err := natsnode.WriteSessionSeed(dir, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# Session %s signs in with --creds %s; add to both nodes' configuration (remove to revoke):\n", name, path)
	fmt.Fprintf(out, "nats:\n  sessions:\n    %s: %s\n", name, pub)
	return nil
}

// cmdAuthInit writes DIR/<role>.nk (mode 0600, never overwriting) and prints
// the nats: auth: block of their public keys, for both nodes' configuration.
func cmdAuthInit(dir, roles string, out io.Writer) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	list, err := parseRoles(roles)
	if err != nil {
		return err
	}
	keys, err := natsnode.WriteSeeds(dir, list)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	fmt.Fprintf(out, "# Public keys of the seeds in %s; the same block goes into both nodes' configuration.\n", abs)
	fmt.Fprintln(out, "nats:")
	fmt.Fprintf(out, "  creds_dir: %s\n", abs)
	fmt.Fprintln(out, "  auth:")
	for _, r := range list {
		fmt.Fprintf(out, "    %s: %s\n", r, keys[r])
	}
	return nil
}

// defaultAuthRoles are every role but printq (an optional application) and
// nats (the NATS process connects in process, without credentials).
func defaultAuthRoles() []string {
	var out []string
	for _, r := range config.AuthRoles {
		if r != config.RolePrintq && r != config.RoleNATS {
			out = append(out, r)
		}
	}
	return out
}

func parseRoles(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
			continue
		case !config.ValidAuthRole(r):
			return nil, fmt.Errorf("--roles: %q is not a role (want %s)", r, strings.Join(config.AuthRoles, ", "))
		case seen[r]:
			return nil, fmt.Errorf("--roles: %q given twice", r)
		}
		seen[r] = true
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("--roles: empty")
	}
	return out, nil
}
