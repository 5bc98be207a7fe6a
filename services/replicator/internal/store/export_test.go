package store

import (
	"slices"
	"time"
)

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

// RowImages is the SQL that reads each row of table name of s as the
// triggers capture it: its key and its whole image.
func RowImages(s *SQLite, name string) string {
	t, _ := s.table(name)
	sorted := &table{name: t.name, pk: t.pk, cols: slices.Sorted(slices.Values(t.cols))}
	return `SELECT ` + keyExpr(t, ident(name)) + `, ` + rowExpr(sorted, ident(name)) + ` FROM ` + ident(name)
}

// SetRowSizes makes s hash a row larger than large bytes in slices of
// slice bytes (or characters).
func SetRowSizes(s *SQLite, large, slice int) {
	s.mu.Lock()
	s.sizes = rowSizes{large: large, slice: slice}
	s.mu.Unlock()
}
