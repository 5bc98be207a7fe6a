package store

import "time"

// DataVersionQueries is how many times s has asked PRAGMA data_version.
func DataVersionQueries(s *SQLite) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asks
}

// SetRecheck sets how often s asks data_version whatever the files say.
func SetRecheck(s *SQLite, d time.Duration) {
	s.mu.Lock()
	s.recheck = d
	s.mu.Unlock()
}
