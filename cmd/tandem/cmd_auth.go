package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

func init() {
	commands["auth"] = command{"NATS credentials: auth init makes one nkey seed per role and prints the nats.auth block", cmdAuth}
}

func cmdAuth(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) > 0 && args[0] == "session" {
		return cmdAuthSession(ctx, args[1:], out, errOut)
	}
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(errOut, "usage: tandem auth init --dir DIR [--roles ROLE,…]\n       tandem auth session NAME --dir DIR")
			return errHelp
		}
		fmt.Fprintln(errOut, "usage: tandem auth init --dir DIR [--roles ROLE,…]\n       tandem auth session NAME --dir DIR")
		return errUsage
	}
	return cmdAuthInit(ctx, args[1:], out, errOut)
}

// cmdAuthInit writes DIR/<role>.nk (mode 0600, never overwriting) and prints
// the nats: auth: block of their public keys, for both nodes' configuration.
func cmdAuthInit(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("auth init", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the seed files <role>.nk (created 0700 if missing)")
	roles := fs.String("roles", strings.Join(defaultAuthRoles(), ","),
		"comma list of roles, of "+strings.Join(config.AuthRoles, ", "))
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	list, err := parseRoles(*roles)
	if err != nil {
		return err
	}
	keys, err := natsnode.WriteSeeds(*dir, list)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		abs = *dir
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

// cmdAuthSession makes one client's own session key (SPEC §9):
// DIR/session-NAME.nk, and prints the nats.sessions line for both nodes'
// configuration. Removing the line (and restarting the nodes) revokes that
// key alone.
func cmdAuthSession(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("auth session", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the seed file session-NAME.nk (created 0700 if missing)")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if name == "" || fs.NArg() > 0 || *dir == "" {
		fmt.Fprintln(errOut, "usage: tandem auth session NAME --dir DIR")
		return errUsage
	}
	path, pub, err := natsnode.WriteSessionSeed(*dir, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# Session %s signs in with --creds %s; add to both nodes' configuration (remove to revoke):\n", name, path)
	fmt.Fprintf(out, "nats:\n  sessions:\n    %s: %s\n", name, pub)
	return nil
}
