package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/buildinfo"
)

func init() {
	commandFactories = append(commandFactories, newManCmd)
}

// versionLine is what tandem --version prints.
func versionLine() string { return buildinfo.Get().String() }

// newManCmd writes the man pages, one per command, generated from the same
// definitions as the help (hidden: for packagers and `make man`).
func newManCmd(*app) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:    "man --dir DIR",
		Short:  "write the man pages of every command (tandem.1, tandem-status.1, …) into DIR",
		Hidden: true,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := c.Root()
			root.DisableAutoGenTag = true
			h := &doc.GenManHeader{Title: "TANDEM", Section: "1", Source: "tandem " + buildinfo.Get().Version, Manual: "Tandem manual"}
			if err := doc.GenManTree(root, h, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "man pages written to %s\n", dir)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for the man pages (created if missing)")
	return c
}
