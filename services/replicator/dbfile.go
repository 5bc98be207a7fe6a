package replicator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tandem-ha/tandem/pkg/clock"
)

// fileCheck is how often a session looks whether its database file is
// still the one it opened.
const fileCheck = 2 * time.Second

// databaseGone ends a session whose database file was deleted or replaced
// while open: SQLite would go on reading and writing the unlinked file,
// and the application, opening the path, would find another database (an
// empty one, after a failover).
type databaseGone struct{ path, why string }

func (e *databaseGone) Error() string {
	return fmt.Sprintf("the database file %s was %s while open", e.path, e.why)
}

// watchFile returns a *databaseGone once the file at the database's path
// is no longer the one the session opened, or nil when ctx ends.
func (s *Service) watchFile(ctx context.Context) error {
	path := DatabasePath(s.cfg)
	tick := clock.NewBeat(fileCheck) // with the node's other periodic jobs
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			tick.Next()
		}
		now, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return &databaseGone{path: path, why: "deleted"}
		case err != nil:
			continue // unreadable for a moment: the next look decides
		case !os.SameFile(s.file, now):
			return &databaseGone{path: path, why: "replaced"}
		}
	}
}
