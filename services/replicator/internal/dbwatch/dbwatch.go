// Package dbwatch tells the shipper at once that an SQLite database was
// written, so that an idle shipper can sleep long between polls and still
// ship the first change after a quiet spell without waiting out its sleep.
//
// A Watcher watches the database's directory (inotify on Linux) for writes
// to the database file, its WAL or its rollback journal, by any process,
// and for those files being created, replaced or removed (a restore). The
// shared-memory index (-shm) is written through mmap, which raises no
// events, and readers write it too, so it is left out: a poll that only
// reads never wakes itself. A wake-up says only "look now": the shipper's
// poll (store.Changed) decides whether anything was committed.
//
// Where watching is not possible (another system, no inotify instances
// left) New returns an error and the shipper keeps its short idle polls.
package dbwatch

import "path/filepath"

// names are the file names of the database at path that a commit writes.
func names(path string) map[string]bool {
	base := filepath.Base(path)
	return map[string]bool{base: true, base + "-wal": true, base + "-journal": true}
}
