package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// Noticing commits cheaply.
//
// The shipper asks Changed every few milliseconds, most of the time of an
// idle database. PRAGMA data_version answers exactly (it changes when another
// connection commits), but through database/sql and a pure-Go SQLite each
// query costs a statement prepare and step, which at 20–100 polls a second
// was most of an idle node's CPU. A commit, by any connection or process,
// writes the database file or its WAL, so Changed first compares their size
// and modification time with what they were at the last query (two stat
// calls, no SQL) and asks data_version only when they moved.
//
// A file time alone is not proof enough. A commit writes its WAL frames
// before it publishes them in the shared WAL index (with synchronous=FULL,
// as the sqlite3 shell has it, an fsync lies between), so a stat can see
// the write while a query at that moment cannot yet see the commit; and a
// WAL rewritten from its start after a checkpoint can keep its size. So the
// stamp is trusted only once the files have been still for settleTime, and
// data_version is asked at least every recheckEvery whatever the files say.

const (
	// settleTime: files written more recently than this are not trusted to
	// be still (a commit may be on its way into the WAL index; file systems
	// with whole-second times).
	settleTime = 2 * time.Second
	// recheckEvery bounds how long a change the files do not show can go
	// unnoticed.
	recheckEvery = time.Second
)

// fileStamp is the size and modification time of the database file and its
// WAL (walSize -1: there is no WAL file).
type fileStamp struct {
	dbSize, dbMod   int64
	walSize, walMod int64
}

// stampFiles stamps the database at path; false when a file cannot be read
// (then every poll asks data_version).
func stampFiles(path string) (fileStamp, bool) {
	db, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	st := fileStamp{dbSize: db.Size(), dbMod: db.ModTime().UnixNano(), walSize: -1}
	wal, err := os.Stat(path + "-wal")
	switch {
	case err == nil:
		st.walSize, st.walMod = wal.Size(), wal.ModTime().UnixNano()
	case !errors.Is(err, fs.ErrNotExist):
		return fileStamp{}, false
	}
	return st, true
}

// still reports whether neither file was written within settleTime of now.
func (f fileStamp) still(now time.Time) bool {
	return now.UnixNano()-max(f.dbMod, f.walMod) > settleTime.Nanoseconds()
}

// Changed implements Store: PRAGMA data_version on a pinned connection,
// which changes when another connection commits, asked only when the
// database's files moved, were written recently, or were last asked
// recheckEvery ago (see above).
func (s *SQLite) Changed(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	st, ok := stampFiles(s.path)
	if ok && st == s.stamp && st.still(now) && now.Sub(s.asked) < s.recheck {
		return false, nil
	}
	if s.poll == nil {
		c, err := s.r.Conn(ctx)
		if err != nil {
			return false, err
		}
		s.poll = c
	}
	var v int64
	s.asks++
	if err := s.poll.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		s.poll.Close()
		s.poll, s.stamp = nil, fileStamp{}
		return false, err
	}
	// The stamp taken before the query: a commit that wrote the files after
	// the stat moves them again, and the next call asks.
	s.stamp, s.asked = st, now
	changed := v != s.dv
	s.dv = v
	return changed, nil
}
